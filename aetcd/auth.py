"""The Auth facade: enable/disable auth, users, roles and key-range permissions.

Every change is a write: one that fails in transit raises
:class:`aetcd.OutcomeUnknownError` and is never retried (read the state back
with :meth:`AuthAPI.user_get` / :meth:`AuthAPI.role_get`). Refusals by etcd
(unknown user or role, name taken, permission not granted...) raise
:class:`aetcd.AuthAdminError` with etcd's message.

Passwords are sent to etcd and nowhere else: no repr, log line or error
message of this module contains one.
"""

from __future__ import annotations

from typing import Final

from google.protobuf.message import Message

from ._channel import Credentials, Transport
from ._keys import FROM_KEY, prefix_range_end, to_bytes
from ._members import Method
from ._wire import decode
from ._wire import messages as pb
from .config import Secret
from .errors import EmptyKeyError, InvalidArgumentError, _rejected
from .types import AuthStatus, Permission, ResponseHeader, Role, User

__all__ = ["AuthAPI"]

_PERMISSIONS: Final = {p.name: p for p in Permission}


def _name(value: object, what: str, etcd_message: str | None = None) -> str:
    """A user or role name; *etcd_message* is what etcd answers to an empty one, if anything."""
    if not isinstance(value, str):
        raise TypeError(f"{what} must be str, not {type(value).__name__}")
    if not value:
        if etcd_message is not None:
            raise _rejected(InvalidArgumentError, etcd_message, f"{what} must not be empty")
        raise InvalidArgumentError(f"{what} must not be empty")
    return value


def _wrap(value: object) -> Secret:
    """*value* as a :class:`Secret`, for the caller to rebind its parameter to."""
    # Never echo the value: it is a secret, even when it has the wrong type.
    if not isinstance(value, str | Secret):
        raise TypeError(f"password must be str or aetcd.Secret, not {type(value).__name__}")
    return Secret(value)


def _nonempty(password: Secret) -> Secret:
    if not password:
        raise InvalidArgumentError("password must not be empty (use no_password=True)")
    return password


class _WithPassword:
    """A UserAdd / UserChangePassword request whose password stays wrapped.

    The protobuf message would hold the plain text in every frame it passes
    through (and show it in its ``repr``); the method's serializer appends the
    password field to the serialised message instead (protobuf merges them).
    """

    __slots__ = ("message", "password")

    def __init__(self, message: Message, password: Secret) -> None:
        self.message = message
        self.password = password

    def __repr__(self) -> str:
        return f"<{type(self.message).__name__} name={self.message.name!r} password=***>"  # type: ignore[attr-defined]


def _serialize_with_password(request: _WithPassword | Message) -> bytes:
    if not isinstance(request, _WithPassword):
        return request.SerializeToString()
    message = request.message
    # No local of this frame holds the plain text (nor the message built from it).
    return (
        message.SerializeToString()
        + type(message)(password=request.password.reveal()).SerializeToString()  # type: ignore[call-arg]
    )


def _password_method(transport: Transport, name: str, response: type[Message]) -> Method:
    """The Auth method *name*, taking :class:`_WithPassword` requests."""
    return Method(
        transport,
        "unary_unary",
        f"/etcdserverpb.Auth/{name}",
        {
            "request_serializer": _serialize_with_password,
            "response_deserializer": response.FromString,
        },
    )


def _permission(value: object) -> Permission:
    if isinstance(value, Permission):
        return value
    if isinstance(value, str) and value.upper() in _PERMISSIONS:
        return _PERMISSIONS[value.upper()]
    raise TypeError(f"perm must be an aetcd.Permission, not {value!r}")


def _key_range(key: object, prefix: bool, range_end: object, from_key: bool) -> tuple[bytes, bytes]:
    """The ``(key, range_end)`` of a permission, as etcdctl builds it."""
    k = to_bytes(key, "key")
    for flag, name in ((prefix, "prefix"), (from_key, "from_key")):
        if type(flag) is not bool:
            raise TypeError(f"{name} must be bool, not {type(flag).__name__}")
    if prefix + from_key + (range_end is not None) > 1:
        raise InvalidArgumentError("give only one of prefix, range_end and from_key")
    if prefix:
        return k, prefix_range_end(k)  # an empty key with prefix=True: every key
    if from_key:
        return k, FROM_KEY
    if range_end is not None:
        return k, to_bytes(range_end, "range_end")
    if not k:
        raise EmptyKeyError("key must not be empty (use prefix=True for every key)")
    return k, b""


class AuthAPI:
    """Auth operations of :class:`aetcd.Client` (etcd's Auth service)."""

    def __init__(self, transport: Transport) -> None:
        self._t = transport
        # Like Authenticate's, these take a wrapper so the password stays wrapped.
        self._user_add = _password_method(transport, "UserAdd", pb.AuthUserAddResponse)
        self._user_change_password = _password_method(
            transport, "UserChangePassword", pb.AuthUserChangePasswordResponse
        )

    # -- the switch ------------------------------------------------------------

    async def auth_enable(self, *, timeout: float | None = None) -> None:
        """Turn authentication on for the whole cluster.

        Needs a ``root`` user holding the ``root`` role first
        (:class:`aetcd.AuthAdminError` ``root user does not exist`` otherwise).
        From then on every request needs credentials: a client created without
        ``username``/``password`` (this one, possibly) gets
        :class:`aetcd.AuthenticationError`.
        """
        t = self._t
        await t.unary(t.auth.AuthEnable, pb.AuthEnableRequest(), timeout, write=True)

    async def auth_disable(self, *, timeout: float | None = None) -> None:
        """Turn authentication off (needs the root role while it is on)."""
        t = self._t
        await t.unary(t.auth.AuthDisable, pb.AuthDisableRequest(), timeout, write=True)

    async def auth_status(self, *, timeout: float | None = None) -> AuthStatus:
        """Whether auth is on, and the auth store's revision."""
        t = self._t
        resp = await t.unary(t.auth.AuthStatus, pb.AuthStatusRequest(), timeout, write=False)
        return decode.auth_status(resp)

    async def authenticate(
        self, name: str, password: str | Secret, *, timeout: float | None = None
    ) -> str:
        """Check *name*/*password* and return a fresh token for them.

        Rarely needed: a client given ``username``/``password`` gets and
        refreshes its own token. Raises :class:`aetcd.AuthenticationError` for
        wrong credentials and :class:`aetcd.AuthAdminError` when auth is off.
        """
        password = Secret(password)  # the plain text out of this frame's locals
        if not password:
            raise InvalidArgumentError("password must not be empty")
        req = Credentials(_name(name, "name"), password)
        t = self._t
        resp = await t.unary(t.auth.Authenticate, req, timeout, write=False)
        return resp.token

    # -- users -----------------------------------------------------------------

    async def user_add(
        self,
        name: str,
        password: str | Secret | None = None,
        *,
        no_password: bool = False,
        timeout: float | None = None,
    ) -> None:
        """Create user *name* with *password* (a ``str`` or :class:`aetcd.Secret`;
        kept wrapped up to the wire, see :class:`aetcd.Secret`).

        ``no_password=True`` (and no password) creates a user that can only
        authenticate by a TLS client certificate whose common name is *name*.
        Raises :class:`aetcd.AuthAdminError` if the name is taken.
        """
        # The plain text out of this frame's locals before anything can raise.
        password = None if password is None else _wrap(password)
        user = _name(name, "name", "etcdserver: user name is empty")
        if type(no_password) is not bool:
            raise TypeError(f"no_password must be bool, not {type(no_password).__name__}")
        if no_password:
            if password is not None:
                raise InvalidArgumentError("give a password or no_password=True, not both")
            secret = Secret("")
        else:
            if password is None:
                raise InvalidArgumentError("a password is required unless no_password=True")
            secret = _nonempty(password)
        req = _WithPassword(
            pb.AuthUserAddRequest(name=user, options=pb.UserAddOptions(no_password=no_password)),
            secret,
        )
        await self._t.unary(self._user_add, req, timeout, write=True)

    async def user_get(self, name: str, *, timeout: float | None = None) -> User:
        """User *name* and its roles (:class:`aetcd.AuthAdminError` if unknown)."""
        user = _name(name, "name")
        t = self._t
        resp = await t.unary(t.auth.UserGet, pb.AuthUserGetRequest(name=user), timeout, write=False)
        return User(_header(resp), user, list(resp.roles))

    async def user_list(self, *, timeout: float | None = None) -> list[str]:
        """The names of every user."""
        t = self._t
        resp = await t.unary(t.auth.UserList, pb.AuthUserListRequest(), timeout, write=False)
        return list(resp.users)

    async def user_delete(self, name: str, *, timeout: float | None = None) -> None:
        """Delete user *name* (:class:`aetcd.AuthAdminError` if unknown)."""
        req = pb.AuthUserDeleteRequest(name=_name(name, "name"))
        t = self._t
        await t.unary(t.auth.UserDelete, req, timeout, write=True)

    async def user_change_password(
        self, name: str, password: str | Secret, *, timeout: float | None = None
    ) -> None:
        """Set a new password (``str`` or :class:`aetcd.Secret`) for user *name*;
        its existing tokens stay valid until they expire."""
        password = _nonempty(_wrap(password))  # the plain text out of this frame's locals
        req = _WithPassword(pb.AuthUserChangePasswordRequest(name=_name(name, "name")), password)
        await self._t.unary(self._user_change_password, req, timeout, write=True)

    async def user_grant_role(self, user: str, role: str, *, timeout: float | None = None) -> None:
        """Grant *role* to *user* (:class:`aetcd.AuthAdminError` if either is unknown)."""
        req = pb.AuthUserGrantRoleRequest(user=_name(user, "user"), role=_name(role, "role"))
        t = self._t
        await t.unary(t.auth.UserGrantRole, req, timeout, write=True)

    async def user_revoke_role(self, user: str, role: str, *, timeout: float | None = None) -> None:
        """Take *role* away from *user* (:class:`aetcd.AuthAdminError` if not granted)."""
        req = pb.AuthUserRevokeRoleRequest(name=_name(user, "user"), role=_name(role, "role"))
        t = self._t
        await t.unary(t.auth.UserRevokeRole, req, timeout, write=True)

    # -- roles -----------------------------------------------------------------

    async def role_add(self, name: str, *, timeout: float | None = None) -> None:
        """Create role *name*, without permissions (:class:`aetcd.AuthAdminError` if taken).

        The role named ``root`` is special: it may do everything, including
        auth administration.
        """
        req = pb.AuthRoleAddRequest(name=_name(name, "name", "etcdserver: role name is empty"))
        t = self._t
        await t.unary(t.auth.RoleAdd, req, timeout, write=True)

    async def role_get(self, name: str, *, timeout: float | None = None) -> Role:
        """Role *name* and its permissions (:class:`aetcd.AuthAdminError` if unknown)."""
        role = _name(name, "name")
        t = self._t
        resp = await t.unary(t.auth.RoleGet, pb.AuthRoleGetRequest(role=role), timeout, write=False)
        return Role(_header(resp), role, [decode.role_permission(p) for p in resp.perm])

    async def role_list(self, *, timeout: float | None = None) -> list[str]:
        """The names of every role."""
        t = self._t
        resp = await t.unary(t.auth.RoleList, pb.AuthRoleListRequest(), timeout, write=False)
        return list(resp.roles)

    async def role_delete(self, name: str, *, timeout: float | None = None) -> None:
        """Delete role *name*; users that had it lose it."""
        req = pb.AuthRoleDeleteRequest(role=_name(name, "name"))
        t = self._t
        await t.unary(t.auth.RoleDelete, req, timeout, write=True)

    async def role_grant_permission(
        self,
        role: str,
        key: str | bytes,
        *,
        prefix: bool = False,
        range_end: str | bytes | None = None,
        from_key: bool = False,
        perm: Permission | str = Permission.READWRITE,
        timeout: float | None = None,
    ) -> None:
        """Let *role* read and/or write *key*, or every key starting with it
        (``prefix=True``), the range ``[key, range_end)``, or every key from
        *key* on (``from_key=True``).

        ``perm`` is :class:`aetcd.Permission` ``READ``, ``WRITE`` or
        ``READWRITE`` (or that name as a string, any case). Granting a range
        again replaces its permission type.
        """
        name = _name(role, "role")
        k, end = _key_range(key, prefix, range_end, from_key)
        p = _permission(perm)
        req = pb.AuthRoleGrantPermissionRequest(
            name=name,
            perm=pb.Permission(permType=pb.Permission.Type.ValueType(p), key=k, range_end=end),
        )
        t = self._t
        await t.unary(t.auth.RoleGrantPermission, req, timeout, write=True)

    async def role_revoke_permission(
        self,
        role: str,
        key: str | bytes,
        *,
        prefix: bool = False,
        range_end: str | bytes | None = None,
        from_key: bool = False,
        timeout: float | None = None,
    ) -> None:
        """Remove the permission of *role* on exactly this key or range (as it
        was granted; :class:`aetcd.AuthAdminError` if there is none).
        """
        name = _name(role, "role")
        k, end = _key_range(key, prefix, range_end, from_key)
        req = pb.AuthRoleRevokePermissionRequest(role=name, key=k, range_end=end)
        t = self._t
        await t.unary(t.auth.RoleRevokePermission, req, timeout, write=True)


def _header(resp: pb.AuthUserGetResponse | pb.AuthRoleGetResponse) -> ResponseHeader:
    return decode.header_view(resp.header)
