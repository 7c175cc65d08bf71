"""``auth enable|disable|status``, ``user ...`` and ``role ...``."""

from __future__ import annotations

import argparse
import getpass
import sys
from typing import TYPE_CHECKING, Any

from .._keys import prefix_range_end
from ..config import Secret
from ..errors import AuthAdminError
from ..types import Permission, Role
from .common import EXIT_OK, Commands, UsageError, add_flag, arg_bytes, parse_bool
from .output import b64, no_table

if TYPE_CHECKING:
    from .context import Context

_ROOT_ROLE_MISSING = "etcdserver: root user does not have root role"


def _say(ctx: Context, text: str, **doc: Any) -> int:
    no_table(ctx.out, "this command")
    if ctx.out.json:
        ctx.out.dump(doc)
    else:
        ctx.out.line(text)
    return EXIT_OK


# -- auth ----------------------------------------------------------------------------


async def cmd_auth_enable(ctx: Context, args: argparse.Namespace) -> int:
    try:
        await ctx.client.auth_enable()
    except AuthAdminError as exc:
        if exc.message != _ROOT_ROLE_MISSING:
            raise
        # As etcdctl does: create the root role (if missing), grant it to root, retry.
        roles = await ctx.client.role_list()
        if "root" not in roles:
            await ctx.client.role_add("root")
        await ctx.client.user_grant_role("root", "root")
        await ctx.client.auth_enable()
    return _say(ctx, "Authentication Enabled", enabled=True)


async def cmd_auth_disable(ctx: Context, args: argparse.Namespace) -> int:
    await ctx.client.auth_disable()
    return _say(ctx, "Authentication Disabled", enabled=False)


async def cmd_auth_status(ctx: Context, args: argparse.Namespace) -> int:
    status = await ctx.client.auth_status()
    no_table(ctx.out, "auth status")
    if ctx.out.json:
        ctx.out.dump({"enabled": status.enabled, "authRevision": status.auth_revision})
    else:
        ctx.out.line(f"Authentication Status: {str(status.enabled).lower()}")
        ctx.out.line(f"AuthRevision: {status.auth_revision}")
    return EXIT_OK


# -- users ---------------------------------------------------------------------------


def _read_password(name: str, interactive: bool, confirm: bool) -> Secret:
    """Prompt on a terminal (twice with *confirm*), else read one line of stdin.

    Wrapped at once, so that no frame's locals hold the plain text.
    """
    if interactive and sys.stdin.isatty():
        password = Secret(getpass.getpass(f"Password of {name}: "))
        again = f"Type password of {name} again for confirmation: "
        if confirm and Secret(getpass.getpass(again)) != password:
            raise UsageError("the passwords do not match")
        return password
    line = Secret(sys.stdin.readline())
    if not line:
        raise UsageError(f"no password for {name} on stdin")
    return Secret(line.reveal().rstrip("\r\n"))


def _prepare_user_add(args: argparse.Namespace) -> None:
    # Passwords are wrapped at once, here and in *args* (see resolve_settings).
    name, sep, given = args.user.partition(":")
    password = Secret(given)
    del given
    args.user = name
    if args.new_user_password is not None:
        args.new_user_password = Secret(args.new_user_password)
    if not name:
        raise UsageError("user add needs a user name")
    args.name = name
    if args.no_password:
        if sep or args.new_user_password is not None:
            raise UsageError("--no-password cannot be combined with a password")
        args.secret = None
        return
    if sep:
        args.secret = password
    elif args.new_user_password is not None:
        args.secret = args.new_user_password
    else:
        args.secret = _read_password(name, args.interactive, confirm=True)


async def cmd_user_add(ctx: Context, args: argparse.Namespace) -> int:
    await ctx.client.user_add(args.name, args.secret, no_password=args.no_password)
    return _say(ctx, f"User {args.name} created", user=args.name)


async def cmd_user_delete(ctx: Context, args: argparse.Namespace) -> int:
    await ctx.client.user_delete(args.name)
    return _say(ctx, f"User {args.name} deleted", user=args.name)


async def cmd_user_get(ctx: Context, args: argparse.Namespace) -> int:
    no_table(ctx.out, "user get")
    user = await ctx.client.user_get(args.name)
    roles = [await ctx.client.role_get(r) for r in user.roles] if args.detail else []
    if ctx.out.json:
        doc: dict[str, Any] = {"name": user.name, "roles": user.roles}
        if args.detail:
            doc["permissions"] = {r.name: _role_json(r)["permissions"] for r in roles}
        ctx.out.dump(doc)
        return EXIT_OK
    ctx.out.line(f"User: {user.name}")
    if args.detail:
        for role in roles:
            ctx.out.line()
            _print_role(ctx, role)
    else:
        ctx.out.line("Roles:" + "".join(f" {r}" for r in user.roles))
    return EXIT_OK


async def cmd_user_list(ctx: Context, args: argparse.Namespace) -> int:
    no_table(ctx.out, "user list")
    users = await ctx.client.user_list()
    if ctx.out.json:
        ctx.out.dump({"users": users})
    else:
        for name in users:
            ctx.out.line(name)
    return EXIT_OK


def _prepare_passwd(args: argparse.Namespace) -> None:
    if args.new_password is None:
        args.new_password = _read_password(args.name, args.interactive, confirm=True)
    else:
        args.new_password = Secret(args.new_password)


async def cmd_user_passwd(ctx: Context, args: argparse.Namespace) -> int:
    await ctx.client.user_change_password(args.name, args.new_password)
    return _say(ctx, "Password updated", user=args.name)


async def cmd_user_grant_role(ctx: Context, args: argparse.Namespace) -> int:
    await ctx.client.user_grant_role(args.user, args.role)
    return _say(ctx, f"Role {args.role} is granted to user {args.user}", **vars_of(args))


async def cmd_user_revoke_role(ctx: Context, args: argparse.Namespace) -> int:
    await ctx.client.user_revoke_role(args.user, args.role)
    return _say(ctx, f"Role {args.role} is revoked from user {args.user}", **vars_of(args))


def vars_of(args: argparse.Namespace) -> dict[str, str]:
    return {"user": args.user, "role": args.role}


# -- roles ---------------------------------------------------------------------------


def _range_text(key: bytes, end: bytes) -> str:
    k = key.decode("utf-8", "surrogateescape")
    if end == b"\0":
        text = f"[{k}, <open ended>"
    else:
        text = f"[{k}, {end.decode('utf-8', 'surrogateescape')})"
    if prefix_range_end(key) == end:
        text += f" (prefix {k})"
    return text


def _print_role(ctx: Context, role: Role) -> None:
    ctx.out.line(f"Role {role.name}")
    for title, kinds in (
        ("KV Read:", (Permission.READ, Permission.READWRITE)),
        ("KV Write:", (Permission.WRITE, Permission.READWRITE)),
    ):
        ctx.out.line(title)
        for perm in role.permissions:
            if perm.perm not in kinds:
                continue
            if perm.range_end:
                ctx.out.line(f"\t{_range_text(perm.key, perm.range_end)}")
            else:
                ctx.out.line(b"\t" + perm.key)


def _role_json(role: Role) -> dict[str, Any]:
    return {
        "name": role.name,
        "permissions": [
            {"permType": p.perm.name, "key": b64(p.key), "range_end": b64(p.range_end)}
            for p in role.permissions
        ],
    }


async def cmd_role_add(ctx: Context, args: argparse.Namespace) -> int:
    await ctx.client.role_add(args.name)
    return _say(ctx, f"Role {args.name} created", role=args.name)


async def cmd_role_delete(ctx: Context, args: argparse.Namespace) -> int:
    await ctx.client.role_delete(args.name)
    return _say(ctx, f"Role {args.name} deleted", role=args.name)


async def cmd_role_get(ctx: Context, args: argparse.Namespace) -> int:
    no_table(ctx.out, "role get")
    role = await ctx.client.role_get(args.name)
    if ctx.out.json:
        ctx.out.dump(_role_json(role))
    else:
        _print_role(ctx, role)
    return EXIT_OK


async def cmd_role_list(ctx: Context, args: argparse.Namespace) -> int:
    no_table(ctx.out, "role list")
    roles = await ctx.client.role_list()
    if ctx.out.json:
        ctx.out.dump({"roles": roles})
    else:
        for name in roles:
            ctx.out.line(name)
    return EXIT_OK


def _perm_range(args: argparse.Namespace) -> dict[str, Any]:
    if args.prefix and args.from_key:
        raise UsageError("--prefix and --from-key cannot be used together")
    if args.range_end is not None and (args.prefix or args.from_key):
        raise UsageError("a range end cannot be combined with --prefix or --from-key")
    return {
        "prefix": args.prefix,
        "from_key": args.from_key,
        "range_end": None if args.range_end is None else arg_bytes(args.range_end),
    }


async def cmd_role_grant(ctx: Context, args: argparse.Namespace) -> int:
    await ctx.client.role_grant_permission(
        args.name, arg_bytes(args.key), perm=Permission[args.perm], **_perm_range(args)
    )
    return _say(ctx, f"Role {args.name} updated", role=args.name)


async def cmd_role_revoke(ctx: Context, args: argparse.Namespace) -> int:
    kw = _perm_range(args)
    key = arg_bytes(args.key)
    await ctx.client.role_revoke_permission(args.name, key, **kw)
    if kw["prefix"]:
        end = prefix_range_end(key)
    elif kw["from_key"]:
        end = b"\0"
    else:
        end = kw["range_end"] or b""
    if not end:
        text = f"Permission of key {args.key} is revoked from role {args.name}"
    elif end == b"\0":
        text = f"Permission of range [{args.key}, <open ended> is revoked from role {args.name}"
    else:
        end_text = end.decode("utf-8", "surrogateescape")
        text = f"Permission of range [{args.key}, {end_text}) is revoked from role {args.name}"
    return _say(ctx, text, role=args.name)


def _perm_type(text: str) -> str:
    value = text.upper()
    if value not in Permission.__members__:
        raise argparse.ArgumentTypeError(f"bad permission {text!r}: use read, write or readwrite")
    return value


def _range_options(p: argparse.ArgumentParser) -> None:
    p.add_argument("key", help="the key, prefix, or start of the range")
    p.add_argument("range_end", nargs="?", help="end of the range [key, range_end)")
    add_flag(p, "--prefix", help="every key starting with KEY")
    add_flag(p, "--from-key", help="every key >= KEY")


def register(commands: Commands, sub: argparse._SubParsersAction[Any]) -> None:
    group = commands.group(sub, "auth", "enable, disable or inspect authentication")
    commands.add(
        group,
        "enable",
        cmd_auth_enable,
        "turn authentication on",
        description="Turn authentication on (needs a root user; the root role is created and\n"
        "granted to it if missing).",
    )
    commands.add(group, "disable", cmd_auth_disable, "turn authentication off")
    commands.add(group, "status", cmd_auth_status, "show whether authentication is on")

    group = commands.group(sub, "user", "manage users")
    p = commands.add(
        group,
        "add",
        cmd_user_add,
        "add a user",
        description="Add a user. The password comes from NAME:PASSWORD, --new-user-password,\n"
        "a prompt (on a terminal) or the first line of stdin.",
    )
    p.add_argument("user", metavar="NAME[:PASSWORD]", help="the user (and password)")
    p.add_argument("--new-user-password", metavar="PASSWORD", help="the new user's password")
    add_flag(p, "--no-password", help="no password: authenticate by TLS client certificate")
    p.add_argument(
        "--interactive",
        type=parse_bool,
        nargs="?",
        const=True,
        default=True,
        metavar="BOOL",
        help="prompt for the password on a terminal (default true)",
    )
    p.set_defaults(prepare=_prepare_user_add)

    p = commands.add(group, "delete", cmd_user_delete, "delete a user")
    p.add_argument("name")
    p = commands.add(group, "get", cmd_user_get, "show a user's roles")
    p.add_argument("name")
    add_flag(p, "--detail", help="also show each role's permissions")
    commands.add(group, "list", cmd_user_list, "list the users")
    p = commands.add(
        group,
        "passwd",
        cmd_user_passwd,
        "change a user's password",
        description="Change a user's password (prompted for on a terminal, else read from the\n"
        "first line of stdin, unless --new-password is given).",
    )
    p.add_argument("name")
    p.add_argument("--new-password", metavar="PASSWORD", help="the new password")
    p.add_argument(
        "--interactive",
        type=parse_bool,
        nargs="?",
        const=True,
        default=True,
        metavar="BOOL",
        help="prompt for the password on a terminal (default true)",
    )
    p.set_defaults(prepare=_prepare_passwd)
    p = commands.add(group, "grant-role", cmd_user_grant_role, "grant a role to a user")
    p.add_argument("user")
    p.add_argument("role")
    p = commands.add(group, "revoke-role", cmd_user_revoke_role, "revoke a role from a user")
    p.add_argument("user")
    p.add_argument("role")

    group = commands.group(sub, "role", "manage roles and their permissions")
    p = commands.add(group, "add", cmd_role_add, "add a role")
    p.add_argument("name")
    p = commands.add(group, "delete", cmd_role_delete, "delete a role")
    p.add_argument("name")
    p = commands.add(group, "get", cmd_role_get, "show a role's permissions")
    p.add_argument("name")
    commands.add(group, "list", cmd_role_list, "list the roles")
    p = commands.add(
        group,
        "grant-permission",
        cmd_role_grant,
        "let a role read and/or write keys",
        description="Grant PERM (read, write or readwrite) on KEY, a prefix (--prefix), a range\n"
        "[KEY, RANGE_END) or every key from KEY (--from-key) to role NAME.",
    )
    p.add_argument("name", help="the role")
    p.add_argument("perm", type=_perm_type, metavar="PERM", help="read, write or readwrite")
    _range_options(p)
    p = commands.add(
        group, "revoke-permission", cmd_role_revoke, "remove a role's permission on keys"
    )
    p.add_argument("name", help="the role")
    _range_options(p)
