"""TLS for a launched server's client port, and for the launcher's own HTTPS probes."""

from __future__ import annotations

import os
import ssl
from dataclasses import dataclass


@dataclass(frozen=True)
class ServerTLS:
    """TLS for a launched server's client port (peers stay plaintext on loopback).

    ``cert_file``/``key_file`` are the server's certificate and key (``--cert-file``,
    ``--key-file``); ``trusted_ca_file`` the CA that client certificates must chain to
    (``--trusted-ca-file``; etcd 3.5 then asks every client for a certificate);
    ``client_cert_auth`` requires one (``--client-cert-auth``).
    The launcher's own probes (health, gateway, metrics) speak HTTPS, verifying the
    server against ``trusted_ca_file`` (or ``ca_file`` when the server's CA differs)
    without checking its name, and present ``client_cert_file``/``client_key_file``
    when given, which ``client_cert_auth`` needs.
    """

    cert_file: str | os.PathLike[str]
    key_file: str | os.PathLike[str]
    trusted_ca_file: str | os.PathLike[str] | None = None
    client_cert_auth: bool = False
    ca_file: str | os.PathLike[str] | None = None
    client_cert_file: str | os.PathLike[str] | None = None
    client_key_file: str | os.PathLike[str] | None = None

    def args(self) -> list[str]:
        """etcd flags for the client port."""
        argv = [
            f"--cert-file={os.fspath(self.cert_file)}",
            f"--key-file={os.fspath(self.key_file)}",
        ]
        if self.trusted_ca_file is not None:
            argv.append(f"--trusted-ca-file={os.fspath(self.trusted_ca_file)}")
        if self.client_cert_auth:
            argv.append("--client-cert-auth")
        return argv

    def probe_context(self) -> ssl.SSLContext:
        """An SSL context for the launcher's own HTTPS probes."""
        ca = self.ca_file if self.ca_file is not None else self.trusted_ca_file
        ctx = ssl.create_default_context(cafile=None if ca is None else os.fspath(ca))
        ctx.check_hostname = False  # probes go to 127.0.0.1, certificates may name a host
        if ca is None:
            ctx.verify_mode = ssl.CERT_NONE
        if self.client_cert_file is not None:
            key = None if self.client_key_file is None else os.fspath(self.client_key_file)
            ctx.load_cert_chain(os.fspath(self.client_cert_file), key)
        return ctx
