"""F16: TLS and mTLS, right and wrong (reliability.md §5, §6.3).

Certificates are made here, per test module, with ``cryptography`` (a dev
dependency): a CA, a server certificate for ``127.0.0.1``/``localhost``, one
naming only a host (for server-name overrides), a client certificate with
CN ``root`` (mTLS and CN-based auth), and a second CA that signed nothing the
server trusts.

Every wrong setup must fail fast (well inside the call's deadline) with a typed
:class:`aetcd.ConnectionFailedError` that says TLS, and never fall back to
plaintext; secrets never reach a repr, an error or the log.
"""

from __future__ import annotations

import datetime
import ipaddress
import logging
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

import aetcd
from aetcd.testing import EtcdServer, ServerTLS
from aetcd.testing.pytest_plugin import EtcdServerFactory

x509 = pytest.importorskip("cryptography.x509")
from cryptography.hazmat.primitives import hashes, serialization  # noqa: E402
from cryptography.hazmat.primitives.asymmetric import ec  # noqa: E402
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID  # noqa: E402

PASSWORD = "tls-F16-secret-pw"
FAST = 2.0  # a wrong TLS setup must fail within this, with a 10 s call deadline


@dataclass(frozen=True)
class PKI:
    dir: Path

    def __getitem__(self, name: str) -> str:
        return str(self.dir / name)


def _name(cn: str) -> x509.Name:
    return x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, cn)])


def _write_key(path: Path, key: ec.EllipticCurvePrivateKey) -> None:
    path.write_bytes(
        key.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption(),
        )
    )


def _ca(d: Path, stem: str) -> tuple[x509.Certificate, ec.EllipticCurvePrivateKey]:
    key = ec.generate_private_key(ec.SECP256R1())
    now = datetime.datetime.now(datetime.UTC)
    cert = (
        x509.CertificateBuilder()
        .subject_name(_name(f"aetcd test {stem}"))
        .issuer_name(_name(f"aetcd test {stem}"))
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - datetime.timedelta(minutes=5))
        .not_valid_after(now + datetime.timedelta(days=1))
        .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
        .sign(key, hashes.SHA256())
    )
    (d / f"{stem}.pem").write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    return cert, key


def _issue(
    d: Path,
    stem: str,
    ca: tuple[x509.Certificate, ec.EllipticCurvePrivateKey],
    cn: str,
    *,
    dns: tuple[str, ...] = (),
    ips: tuple[str, ...] = (),
) -> None:
    key = ec.generate_private_key(ec.SECP256R1())
    now = datetime.datetime.now(datetime.UTC)
    builder = (
        x509.CertificateBuilder()
        .subject_name(_name(cn))
        .issuer_name(ca[0].subject)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - datetime.timedelta(minutes=5))
        .not_valid_after(now + datetime.timedelta(days=1))
        .add_extension(
            x509.ExtendedKeyUsage([ExtendedKeyUsageOID.SERVER_AUTH, ExtendedKeyUsageOID.CLIENT_AUTH]),
            critical=False,
        )
    )
    sans = [x509.DNSName(n) for n in dns] + [x509.IPAddress(ipaddress.ip_address(i)) for i in ips]
    if sans:
        builder = builder.add_extension(x509.SubjectAlternativeName(sans), critical=False)
    cert = builder.sign(ca[1], hashes.SHA256())
    (d / f"{stem}.pem").write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    _write_key(d / f"{stem}-key.pem", key)


@pytest.fixture(scope="module")
def pki(tmp_path_factory: pytest.TempPathFactory) -> Iterator[PKI]:
    d = tmp_path_factory.mktemp("pki")
    ca = _ca(d, "ca")
    other = _ca(d, "other-ca")
    _issue(d, "server", ca, "etcd-server", dns=("localhost",), ips=("127.0.0.1",))
    _issue(d, "named-a", ca, "etcd-a.internal", dns=("etcd-a.internal",))
    _issue(d, "named-b", ca, "etcd-b.internal", dns=("etcd-b.internal",))
    _issue(d, "client", ca, "root")  # CN root: the user under CN-based auth
    _issue(d, "rogue", other, "root")  # right CN, wrong CA
    yield PKI(d)


def _server_tls(pki: PKI, cert: str = "server", *, mtls: bool = False) -> ServerTLS:
    # etcd 3.5.1 asks for a client certificate whenever --trusted-ca-file is given:
    # give the trusted CA only to the mTLS servers.
    return ServerTLS(
        pki[f"{cert}.pem"],
        pki[f"{cert}-key.pem"],
        trusted_ca_file=pki["ca.pem"] if mtls else None,
        client_cert_auth=mtls,
        ca_file=pki["ca.pem"],
        client_cert_file=pki["client.pem"],
        client_key_file=pki["client-key.pem"],
    )


async def _fails_fast(client: aetcd.Client) -> aetcd.ConnectionFailedError:
    start = time.monotonic()
    with pytest.raises(aetcd.ConnectionFailedError) as info:
        await client.get("k")
    elapsed = time.monotonic() - start
    assert elapsed < FAST, f"a TLS failure took {elapsed:.2f} s to surface"
    error = info.value
    assert not error.retryable and "TLS" in str(error), error
    print(f"\nTLS failure after {elapsed:.3f} s: {error}")
    return error


async def test_tls_with_the_right_ca(pki: PKI, etcd_server_factory: EtcdServerFactory) -> None:
    server = await etcd_server_factory(tls=_server_tls(pki))
    assert server.client_url.startswith("https://")
    for endpoints, tls in (
        (server.endpoint, aetcd.TLS(ca=pki["ca.pem"])),
        (server.client_url, aetcd.TLS(ca=pki.dir.joinpath("ca.pem").read_bytes())),
        (f"https://localhost:{server.client_port}", aetcd.TLS(ca=pki["ca.pem"])),
    ):
        async with aetcd.Client(endpoints, tls=tls, timeout=10) as client:
            await client.put("tls/k", "v")
            assert (await client.get("tls/k")).kvs[0].value == b"v"
            assert (await client.status(server.endpoint)).version.startswith("3.")


async def test_mtls_client_certificate_and_cn_auth(
    pki: PKI, etcd_server_factory: EtcdServerFactory, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG)
    server = await etcd_server_factory(tls=_server_tls(pki, mtls=True))
    tls = aetcd.TLS(ca=pki["ca.pem"], cert=pki["client.pem"], key=pki["client-key.pem"])
    assert "BEGIN" not in repr(tls) and "client-key" not in repr(tls)
    async with aetcd.Client(server.endpoint, tls=tls, timeout=10) as client:
        await client.put("mtls/k", "v")
        # CN-based auth: with auth on, the certificate's CN (root) is the user; no password.
        await client.user_add("root", PASSWORD)
        await client.role_add("root")
        await client.user_grant_role("root", "root")
        await client.auth_enable()
        try:
            await client.put("mtls/k", "w")
            assert (await client.get("mtls/k")).kvs[0].value == b"w"
            # A wrong password on top of a valid certificate is refused, without leaking it.
            wrong = aetcd.Client(
                server.endpoint, tls=tls, username="root", password=PASSWORD + "x", timeout=10
            )
            with pytest.raises(aetcd.AuthenticationError) as refused:
                await wrong.connect()
            assert PASSWORD not in repr(wrong) + repr(wrong.settings) + repr(refused.value)
        finally:
            await client.auth_disable()
    assert PASSWORD not in caplog.text


async def test_missing_or_foreign_client_certificate_fails_fast(
    pki: PKI, etcd_server_factory: EtcdServerFactory
) -> None:
    server = await etcd_server_factory(tls=_server_tls(pki, mtls=True))
    for tls in (
        aetcd.TLS(ca=pki["ca.pem"]),  # no client certificate at all
        aetcd.TLS(ca=pki["ca.pem"], cert=pki["rogue.pem"], key=pki["rogue-key.pem"]),
    ):
        async with aetcd.Client(server.endpoint, tls=tls, timeout=10) as client:
            error = await _fails_fast(client)
            # TLS 1.2 servers (etcd 3.5.1) fail the handshake naming the
            # certificate; TLS 1.3 servers refuse after it, which gRPC reports
            # as undecryptable data: the error explains that case.
            assert "CERTIFICATE" in str(error).upper()


async def test_wrong_ca_fails_fast_and_never_falls_back_to_plaintext(
    pki: PKI, etcd_server_factory: EtcdServerFactory
) -> None:
    secure = await etcd_server_factory(tls=_server_tls(pki))
    async with aetcd.Client(secure.endpoint, tls=aetcd.TLS(ca=pki["other-ca.pem"]), timeout=10) as c:
        error = await _fails_fast(c)
        assert "CERTIFICATE_VERIFY_FAILED" in str(error)
        # Watches and keep-alives say the same, instead of hanging.
        with pytest.raises(aetcd.ConnectionFailedError):
            async with c.watch("k"):
                pass
    # A TLS client never talks plaintext to a plaintext server: it fails instead.
    plain = await etcd_server_factory()
    async with aetcd.Client(plain.endpoint, tls=aetcd.TLS(ca=pki["ca.pem"]), timeout=10) as c:
        await _fails_fast(c)
    async with aetcd.Client(f"https://{plain.endpoint}", timeout=10) as c:  # system roots
        await _fails_fast(c)
    # And a plaintext client gets nothing from a TLS-only server.
    async with aetcd.Client(secure.endpoint, timeout=1.0) as c:
        with pytest.raises(aetcd.DeadlineExceededError):
            await c.get("k")


async def test_server_name_override_for_ip_endpoints(
    pki: PKI, etcd_server_factory: EtcdServerFactory
) -> None:
    """Certificates naming hosts, endpoints given as IP addresses."""
    a = await etcd_server_factory(tls=_server_tls(pki, "named-a"))
    b = await etcd_server_factory(tls=_server_tls(pki, "named-b"))
    ca = pki["ca.pem"]
    # Without an override the certificate does not match 127.0.0.1.
    async with aetcd.Client(a.endpoint, tls=aetcd.TLS(ca=ca), timeout=10) as client:
        error = await _fails_fast(client)
        assert "Hostname Verification" in str(error) or "verification" in str(error).lower()
    # One name for every endpoint.
    async with aetcd.Client(
        a.endpoint, tls=aetcd.TLS(ca=ca, server_name="etcd-a.internal"), timeout=10
    ) as client:
        await client.put("named/k", "v")
    # A name per endpoint: one client, two members with different certificates.
    names = {a.endpoint: "etcd-a.internal", f"https://{b.endpoint}": "etcd-b.internal"}
    tls = aetcd.TLS(ca=ca, server_names=names)
    assert tls.name_for(aetcd.config.Endpoint.parse(b.endpoint)) == "etcd-b.internal"
    async with aetcd.Client([a.endpoint, b.endpoint], tls=tls, timeout=10) as client:
        for _ in range(6):  # round robin reaches both members
            await client.get("named/k", serializable=True)
        members = {str(s.member_id) for s in [await client.status(a.endpoint), await client.status(b.endpoint)]}
        assert len(members) == 2
        assert all(m.state(False).name == "READY" for m in client._t.members)
    with pytest.raises(TypeError):
        aetcd.TLS(ca=ca, server_names={a.endpoint: ""})
    with pytest.raises(aetcd.InvalidArgumentError):
        aetcd.TLS(ca=ca, server_names={"not an endpoint": "x"})


def test_tls_settings_are_validated_and_frozen(pki: PKI) -> None:
    names = {"127.0.0.1:1": "a"}
    tls = aetcd.TLS(ca=pki["ca.pem"], server_names=names)
    names["127.0.0.1:1"] = "changed"
    assert tls.server_names["127.0.0.1:1"] == "a"
    with pytest.raises(TypeError):
        tls.server_names["x"] = "y"  # type: ignore[index]
    with pytest.raises(aetcd.InvalidArgumentError):
        aetcd.TLS(cert=pki["client.pem"])
    with pytest.raises(aetcd.InvalidArgumentError):
        aetcd.Client("127.0.0.1:1", tls=aetcd.TLS(ca="/nonexistent/ca.pem"))._t.config.tls._credentials()  # type: ignore[union-attr]


async def test_tls_member_of_a_cluster_by_hostname(pki: PKI) -> None:
    """Host-name endpoints: each member's certificate is checked against its own name."""
    from aetcd.testing import EtcdCluster

    async with EtcdCluster(3, tls=_server_tls(pki)) as cluster:
        endpoints = [f"https://localhost:{m.client_port}" for m in cluster.members]
        async with aetcd.Client(endpoints, tls=aetcd.TLS(ca=pki["ca.pem"]), timeout=10) as client:
            await client.put("cluster/k", "v")
            assert len(await client.members()) == 3
            leader = await cluster.leader()
            leader.kill()
            assert (await client.get("cluster/k")).kvs[0].value == b"v"  # fails over
            await leader.start()


def _unused(server: EtcdServer) -> None:  # keeps the import for type checkers
    del server
