"""Launch one real etcd process on loopback for tests, demos and benchmarks.

:class:`EtcdServer` runs one etcd member on ``127.0.0.1`` only, on free ports, in a
throw-away data directory, and always terminates and reaps its process on exit;
:class:`~aetcd.testing.EtcdCluster` (in :mod:`aetcd.testing.cluster`) runs several
as one cluster. Processes are supervised by :mod:`aetcd.testing._process`, so a
server can be driven from any event loop or synchronously. Readiness checks use
etcd's ``/health`` endpoint (:mod:`aetcd.testing._http`), so nothing here needs the
aetcd client.
"""

from __future__ import annotations

import asyncio
import os
import secrets
import shutil
import signal
import tempfile
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from types import TracebackType
from typing import Any, Self

from . import _host, _http, _process
from ._host import HOST, find_etcd_binary, find_etcdctl_binary
from ._tls import ServerTLS

__all__ = [
    "EtcdServer",
    "EtcdStartError",
    "ExternalEtcd",
    "ServerTLS",
    "find_etcd_binary",
    "find_etcdctl_binary",
]

_READY_PATH = "/health?exclude=NOSPACE"
PORT_ATTEMPTS = 3
"""How often a first start (or a cluster) is retried on fresh ports."""
_POLL_INTERVAL = 0.05
_LOG_TAIL_LINES = 25


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
        self._proc: _process.ChildProcess | None = None
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
        return self._proc is not None and self._proc.running

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
        attempts = PORT_ATTEMPTS if self._ports is None else 1
        for attempt in range(1, attempts + 1):
            if self._ports is None:
                client, peer = _host.reserve_ports(2)
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
            if proc.running:
                proc.signal(signal.SIGTERM)
                if self._paused:
                    proc.signal(signal.SIGCONT)
                if not await proc.wait(timeout):
                    proc.signal(signal.SIGKILL)
                    await proc.wait(5.0)
        finally:
            if proc.running:
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
        proc.kill(2.0)
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
        _process.run_sync(self.start)

    def stop_sync(self, timeout: float = 10.0) -> None:
        """:meth:`stop` from synchronous code."""
        _process.run_sync(lambda: self.stop(timeout))

    def close_sync(self) -> None:
        """:meth:`aclose` from synchronous code."""
        _process.run_sync(self.aclose)

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
        return await _http.is_healthy(self.client_port, timeout, tls=self._probe_tls)

    async def gateway(
        self, path: str, payload: Mapping[str, object] | None = None, *, timeout: float = 5.0
    ) -> dict[str, Any]:
        """POST JSON to etcd's gRPC gateway (e.g. ``/v3/kv/range``) and return the reply.

        Handy to inspect or seed a server without the aetcd client; bytes fields are
        base64 strings and 64-bit integers are decimal strings, as in etcd's JSON API.
        """
        return await _http.post_json(
            self.client_port, path, payload or {}, timeout=timeout, tls=self._probe_tls
        )

    async def metrics(self, timeout: float = 5.0) -> dict[str, float]:
        """The server's Prometheus metrics (``GET /metrics``), summed over labels.

        Tests use it to see the server's side of things, e.g.
        ``etcd_debugging_mvcc_watcher_total`` (open watches) or
        ``etcd_debugging_mvcc_watch_stream_total`` (open watch streams).
        """
        status, body = await _http.request(
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
        return _process.log_tail(self._workdir / "etcd.log", self._log_offset, lines)

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

    def _spawn(self) -> _process.ChildProcess:
        binary = self._binary or find_etcd_binary()
        proc = _process.ChildProcess(
            self._argv(binary), log_path=self.log_path, cwd=self._ensure_workdir()
        )
        self._proc = proc
        self._log_offset = proc.log_offset
        self._paused = False
        _process.supervise(self)
        return proc

    async def _start_once(self) -> None:
        proc = self._spawn()
        try:
            loop = asyncio.get_running_loop()
            deadline = loop.time() + self.startup_timeout
            while True:
                if not proc.running:
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
                if await _http.is_healthy(
                    self.client_port, probe_timeout, _READY_PATH, self._probe_tls
                ):
                    return
                await asyncio.sleep(_POLL_INTERVAL)
        except BaseException:
            # Failed, timed out or cancelled: never leave the child behind.
            proc.kill(2.0)
            self._forget_exited()
            raise

    async def _reap_previous(self) -> None:
        """Finish reaping a killed process that outlived :meth:`kill`'s short wait."""
        proc = self._proc
        if proc is not None and proc.running and not await proc.wait(10.0):
            raise RuntimeError(f"etcd pid {proc.pid} did not exit after SIGKILL")
        self._forget_exited()

    def _forget_exited(self) -> None:
        if self._proc is not None and not self._proc.running:
            self._proc = None
            self._paused = False
            _process.unsupervise(self)

    def _signal(self, sig: signal.Signals) -> None:
        if self._proc is not None:
            self._proc.signal(sig)

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
            _host.release_ports((self._ports.client, self._ports.peer))
            self._ports = None
            self._owns_ports = False

    def _cleanup_files(self) -> None:
        if self._workdir is not None:
            shutil.rmtree(self._workdir, ignore_errors=True)
            self._workdir = None
        self._closed = True
        if self._owns_ports and self._ports is not None:
            _host.release_ports((self._ports.client, self._ports.peer))
            self._owns_ports = False

    def _emergency_cleanup(self) -> bool:
        """SIGKILL and reap a still-running child and drop temp files; True if it ran."""
        proc, self._proc = self._proc, None
        alive = proc is not None and proc.kill(5.0)
        if not self._closed:
            self._cleanup_files()
        return alive

    def __del__(self) -> None:
        _process.collected(self, f"EtcdServer {getattr(self, 'name', '?')!r}")
