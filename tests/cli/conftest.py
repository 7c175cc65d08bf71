"""Fixtures of the command-line tests."""

from __future__ import annotations

import asyncio
import contextlib
import os
from collections.abc import AsyncIterator, Iterator, Sequence
from typing import Any

import pytest
from cli_helpers import PKI, Child, Result, Run, Spawn, child_env

from aetcd.cli import main


@pytest.fixture(autouse=True)
def _no_etcdctl_env(monkeypatch: pytest.MonkeyPatch) -> None:
    """The CLI honours ETCDCTL_* variables: make sure the environment sets none."""
    for name in list(os.environ):
        if name.startswith("ETCDCTL_"):
            monkeypatch.delenv(name)


@pytest.fixture
def cli(capsysbinary: pytest.CaptureFixture[bytes]) -> Run:
    """Run ``aetcd ARGS`` in this process (from a sync test): ``cli(endpoint, *args)``.

    ``endpoint=None`` leaves ``--endpoints`` out.
    """

    def run(endpoint: str | None, *args: str) -> Result:
        capsysbinary.readouterr()
        argv = ([f"--endpoints={endpoint}"] if endpoint else []) + list(args)
        code = main(argv)
        captured = capsysbinary.readouterr()
        return Result(code, captured.out, captured.err.decode())

    return run


@pytest.fixture
async def spawn() -> AsyncIterator[Spawn]:
    """``await spawn(argv)``: start a child; every child is killed after the test."""
    children: list[Child] = []

    async def start(argv: Sequence[str], env: dict[str, str] | None = None) -> Child:
        proc = await asyncio.create_subprocess_exec(
            *argv,
            stdin=asyncio.subprocess.DEVNULL,
            stdout=asyncio.subprocess.PIPE,
            stderr=asyncio.subprocess.PIPE,
            env=env if env is not None else child_env(),
        )
        child = Child(proc)
        children.append(child)
        return child

    yield start
    for child in children:
        if child.proc.returncode is None:
            with contextlib.suppress(ProcessLookupError):
                child.proc.kill()
            await child.proc.wait()


# -- TLS material --------------------------------------------------------------------


@pytest.fixture(scope="session")
def pki(tmp_path_factory: pytest.TempPathFactory) -> Iterator[PKI]:
    """A CA, a server certificate for 127.0.0.1 and a client certificate."""
    import datetime
    import ipaddress

    x509 = pytest.importorskip("cryptography.x509")
    from cryptography.hazmat.primitives import hashes, serialization
    from cryptography.hazmat.primitives.asymmetric import ec
    from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

    d = tmp_path_factory.mktemp("cli-pki")
    now = datetime.datetime.now(datetime.UTC)

    def name(cn: str) -> Any:
        return x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, cn)])

    def write(stem: str, cert: Any, key: Any) -> tuple[str, str]:
        (d / f"{stem}.pem").write_bytes(cert.public_bytes(serialization.Encoding.PEM))
        (d / f"{stem}-key.pem").write_bytes(
            key.private_bytes(
                serialization.Encoding.PEM,
                serialization.PrivateFormat.PKCS8,
                serialization.NoEncryption(),
            )
        )
        return str(d / f"{stem}.pem"), str(d / f"{stem}-key.pem")

    def builder(subject: str, issuer: Any, key: Any) -> Any:
        return (
            x509.CertificateBuilder()
            .subject_name(name(subject))
            .issuer_name(issuer)
            .public_key(key.public_key())
            .serial_number(x509.random_serial_number())
            .not_valid_before(now - datetime.timedelta(minutes=5))
            .not_valid_after(now + datetime.timedelta(days=1))
        )

    ca_key = ec.generate_private_key(ec.SECP256R1())
    ca_cert = (
        builder("aetcd cli test ca", name("aetcd cli test ca"), ca_key)
        .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
        .sign(ca_key, hashes.SHA256())
    )
    ca_path, _ = write("ca", ca_cert, ca_key)
    usage = x509.ExtendedKeyUsage(
        [ExtendedKeyUsageOID.SERVER_AUTH, ExtendedKeyUsageOID.CLIENT_AUTH]
    )
    server_key = ec.generate_private_key(ec.SECP256R1())
    server_cert = (
        builder("etcd-server", ca_cert.subject, server_key)
        .add_extension(usage, critical=False)
        .add_extension(
            x509.SubjectAlternativeName(
                [x509.DNSName("localhost"), x509.IPAddress(ipaddress.ip_address("127.0.0.1"))]
            ),
            critical=False,
        )
        .sign(ca_key, hashes.SHA256())
    )
    client_key = ec.generate_private_key(ec.SECP256R1())
    client_cert = (
        builder("cli-client", ca_cert.subject, client_key)
        .add_extension(usage, critical=False)
        .sign(ca_key, hashes.SHA256())
    )
    yield PKI(
        ca_path,
        *write("server", server_cert, server_key),
        *write("client", client_cert, client_key),
    )
