"""What the recipes need of a client: a small protocol :class:`aetcd.Client` satisfies.

Recipes are typed against it instead of the Client class, so no recipe module
imports ``aetcd.client`` (and the client imports recipes only lazily).
"""

from __future__ import annotations

from collections.abc import Coroutine, Iterable
from typing import TYPE_CHECKING, Any, Protocol

if TYPE_CHECKING:
    from .._lease_blocks import _LeaseContext
    from ..config import ClientConfig
    from ..ops import Compare, LeaseLike, Op
    from ..types import (
        DeleteResult,
        GetResult,
        PutResult,
        SortOrder,
        SortTarget,
        TxnResult,
        WatchFilter,
    )
    from ..watch import Watch
    from .session import _IdleSessions


class RecipeClient(Protocol):
    """The client methods recipes use (KV, watch, lease and the idle-session pool)."""

    @property
    def settings(self) -> ClientConfig: ...

    def get(
        self,
        key: str | bytes,
        *,
        prefix: bool = ...,
        range_end: str | bytes | None = ...,
        limit: int = ...,
        revision: int = ...,
        sort_order: SortOrder | None = ...,
        sort_target: SortTarget | None = ...,
        keys_only: bool = ...,
        count_only: bool = ...,
        max_create_revision: int = ...,
        timeout: float | None = ...,
    ) -> Coroutine[Any, Any, GetResult]: ...

    def put(
        self,
        key: str | bytes,
        value: str | bytes,
        *,
        lease: LeaseLike | None = ...,
        prev_kv: bool = ...,
        timeout: float | None = ...,
    ) -> Coroutine[Any, Any, PutResult]: ...

    def delete(
        self,
        key: str | bytes,
        *,
        prefix: bool = ...,
        prev_kv: bool = ...,
        timeout: float | None = ...,
    ) -> Coroutine[Any, Any, DeleteResult]: ...

    def txn(
        self,
        compare: Iterable[Compare] = ...,
        success: Iterable[Op] = ...,
        failure: Iterable[Op] = ...,
        *,
        timeout: float | None = ...,
    ) -> Coroutine[Any, Any, TxnResult]: ...

    def watch(
        self,
        key: str | bytes,
        *,
        prefix: bool = ...,
        start_revision: int = ...,
        prev_kv: bool = ...,
        filters: Iterable[WatchFilter] = ...,
        progress_notify: bool = ...,
    ) -> Watch: ...

    def request_progress(self) -> Coroutine[Any, Any, None]: ...

    def lease(self, ttl: int = ..., *, id: int = ...) -> _LeaseContext: ...

    def _idle_sessions(self) -> _IdleSessions: ...
