"""The command line: KV, txn, leases, output formats, settings, errors and usage.

Most tests run ``aetcd.cli.main`` in-process against the shared server (keys under
``etcd_prefix``); a few run ``python -m aetcd`` to check what only a real
process shows (stdin, exit statuses as the shell sees them).
"""

from __future__ import annotations

import base64
import json
import re
from pathlib import Path
from typing import Any

import pytest
from cli_helpers import Run, run_cli

from aetcd._cli import common, output
from aetcd._cli.app import build_parser
from aetcd._cli.kv import argify, go_unquote, parse_compare, parse_op
from aetcd._wire.requests import request_op
from aetcd.ops import Compare, Op

# -- KV ------------------------------------------------------------------------------


def test_put_and_get_simple_output(etcd_server: Any, etcd_prefix: str, cli: Run) -> None:
    ep = etcd_server.endpoint
    p = etcd_prefix
    assert cli(ep, "put", f"{p}a", "1").lines == ["OK"]
    assert cli(ep, "put", f"{p}b", "two words").code == 0
    assert cli(ep, "put", f"{p}c", "3").code == 0

    res = cli(ep, "get", f"{p}a")
    assert (res.code, res.lines, res.err) == (0, [f"{p}a", "1"], "")
    assert cli(ep, "get", f"{p}missing").out == b""
    assert cli(ep, "get", p, "--prefix").lines == [f"{p}a", "1", f"{p}b", "two words", f"{p}c", "3"]
    assert cli(ep, "get", p, "--prefix", "--keys-only").lines == [f"{p}a", f"{p}b", f"{p}c"]
    assert cli(ep, "get", p, "--prefix", "--print-value-only").lines == ["1", "two words", "3"]
    assert cli(ep, "get", p, "--prefix", "--count-only").lines == ["3"]
    assert cli(ep, "get", p, "--prefix", "--limit", "1", "--keys-only").lines == [f"{p}a"]
    assert cli(ep, "get", f"{p}a", f"{p}c", "--keys-only").lines == [f"{p}a", f"{p}b"]
    assert cli(ep, "get", f"{p}b", "--from-key", "--keys-only", "--limit=2").lines == [
        f"{p}b",
        f"{p}c",
    ]
    desc = cli(ep, "get", p, "--prefix", "--keys-only", "--sort-by=key", "--order=DESCEND")
    assert desc.lines == [f"{p}c", f"{p}b", f"{p}a"]
    by_value = cli(ep, "get", p, "--prefix", "--print-value-only", "--sort-by", "VALUE")
    assert by_value.lines == ["1", "3", "two words"]
    assert cli(ep, "get", f"{p}a", "--hex", "--print-value-only").lines == ["\\x31"]
    assert cli(ep, "get", f"{p}a", "--consistency=s").lines == [f"{p}a", "1"]
    # etcdctl's --flag=true / --flag=false spellings
    assert cli(ep, "get", p, "--prefix=true", "--keys-only=false", "--count-only").lines == ["3"]


def test_revisions_prev_kv_lease_and_delete(etcd_server: Any, etcd_prefix: str, cli: Run) -> None:
    ep, key = etcd_server.endpoint, f"{etcd_prefix}k"
    first = json.loads(cli(ep, "put", key, "v1", "-w", "json").out)
    rev = first["header"]["revision"]
    prev = cli(ep, "put", key, "v2", "--prev-kv")
    assert prev.lines == ["OK", key, "v1"]
    assert cli(ep, "get", key, "--rev", str(rev), "--print-value-only").lines == ["v1"]

    grant = cli(ep, "lease", "grant", "60")
    lease_id = re.fullmatch(r"lease ([0-9a-f]{16}) granted with TTL\(60s\)", grant.lines[0])
    assert lease_id is not None, grant.lines
    assert cli(ep, "put", key, "--ignore-value", "--lease", lease_id.group(1)).code == 0
    doc = json.loads(cli(ep, "get", key, "-w", "json").out)
    assert doc["kvs"][0]["lease"] == int(lease_id.group(1), 16)
    assert base64.b64decode(doc["kvs"][0]["value"]) == b"v2"

    assert cli(ep, "put", f"{etcd_prefix}k2", "x").code == 0
    gone = cli(ep, "del", f"{etcd_prefix}k2", "--prev-kv")
    assert gone.lines == ["1", f"{etcd_prefix}k2", "x"]
    assert cli(ep, "del", f"{etcd_prefix}nothing").lines == ["0"]
    deleted = json.loads(cli(ep, "delete", etcd_prefix, "--prefix", "-w", "json").out)
    assert deleted["deleted"] == 1
    assert cli(ep, "lease", "revoke", lease_id.group(1)).code == 0


def test_json_output_matches_etcdctl_shape(etcd_server: Any, etcd_prefix: str, cli: Run) -> None:
    ep, key = etcd_server.endpoint, f"{etcd_prefix}j"
    put = json.loads(cli(ep, "put", key, "value", "-w", "json").out)
    assert set(put) == {"header"} and put["header"]["revision"] > 0
    got = json.loads(cli(ep, "get", key, "-w", "json").out)
    assert set(got) == {"header", "kvs", "count"}
    assert got["count"] == 1 and set(got["header"]) >= {"cluster_id", "member_id", "revision"}
    kv = got["kvs"][0]
    assert base64.b64decode(kv["key"]).decode() == key
    assert base64.b64decode(kv["value"]) == b"value"
    assert kv["version"] == 1 and kv["create_revision"] == kv["mod_revision"]
    more = json.loads(cli(ep, "get", etcd_prefix, "--prefix", "--limit=1", "-w=json").out)
    assert "more" not in more  # one key: nothing left out
    empty = json.loads(cli(ep, "get", f"{etcd_prefix}none", "-w", "json").out)
    assert "kvs" not in empty and "count" not in empty


def test_put_reads_the_value_from_stdin(etcd_server: Any, etcd_prefix: str) -> None:
    key = f"{etcd_prefix}stdin"
    res = run_cli(etcd_server.endpoint, "put", key, input=b"line one\nline two\n")
    assert (res.code, res.text) == (0, "OK\n")
    got = run_cli(etcd_server.endpoint, "get", key, "--print-value-only")
    assert got.out == b"line one\nline two\n\n"
    dash = run_cli(etcd_server.endpoint, "put", "--", key, "-starts-with-dash")
    assert dash.code == 0, dash.err


def test_compaction(etcd_server: Any, etcd_prefix: str, cli: Run) -> None:
    ep = etcd_server.endpoint
    rev = json.loads(cli(ep, "put", f"{etcd_prefix}c", "x", "-w", "json").out)["header"]["revision"]
    res = cli(ep, "compaction", str(rev - 1))
    assert (res.code, res.lines) == (0, [f"compacted revision {rev - 1}"])
    old = cli(ep, "get", f"{etcd_prefix}c", "--rev", str(rev - 2))
    assert old.code == 1
    assert old.err == "Error: etcdserver: mvcc: required revision has been compacted\n"


# -- txn -----------------------------------------------------------------------------


def test_txn_from_a_file(etcd_server: Any, etcd_prefix: str, cli: Run, tmp_path: Path) -> None:
    ep, p = etcd_server.endpoint, etcd_prefix
    assert cli(ep, "put", f"{p}k", "5").code == 0
    txn = tmp_path / "txn.txt"
    txn.write_text(
        "# swap k when it holds 5\n"
        f'value("{p}k") = "5"\n'
        f'mod("{p}k") > "0"\n'
        "\n"
        f"put {p}k 6\n"
        f'put "{p}spaced key" "a value"\n'
        f"get {p}k\n"
        f"del {p}absent\n"
        "\n"
        f"get {p}k\n"
        "\n"
    )
    res = cli(ep, "txn", "--file", str(txn))
    assert res.code == 0, res.err
    assert res.lines == ["SUCCESS", "", "OK", "", "OK", "", f"{p}k", "6", "", "0"]
    assert cli(ep, "get", f"{p}spaced key", "--print-value-only").lines == ["a value"]

    again = cli(ep, "txn", "-f", str(txn), "-w", "json")  # k is 6 now: the failure branch
    doc = json.loads(again.out)
    assert "succeeded" not in doc
    rng = doc["responses"][0]["Response"]["response_range"]
    assert base64.b64decode(rng["kvs"][0]["value"]) == b"6"


def test_txn_from_stdin_and_interactive(etcd_server: Any, etcd_prefix: str) -> None:
    ep, p = etcd_server.endpoint, etcd_prefix
    text = f'version("{p}new") = "0"\n\nput {p}new created\n\nget {p}new\n\n'
    res = run_cli(ep, "txn", input=text.encode())
    assert (res.code, res.lines, res.err) == (0, ["SUCCESS", "", "OK"], "")
    # No trailing blank lines: end of input ends the sections.
    res = run_cli(
        ep, "txn", "-i", input=f'version("{p}new") = "0"\n\nput {p}new x\n\nget {p}new'.encode()
    )
    assert res.code == 0, res.err
    assert res.lines == [
        "compares:",
        "success requests (get, put, del):",
        "failure requests (get, put, del):",
        "FAILURE",
        "",
        f"{p}new",
        "created",
    ]
    bad = run_cli(ep, "txn", input=b'value("k") ~ "v"\n\n\n\n')
    assert bad.code == 2
    assert bad.err == 'Error: malformed comparison: value("k") ~ "v" (unknown operator ~)\n'


@pytest.mark.parametrize(
    ("line", "expected"),
    [
        ('value("k") = "v"', Compare.value("k") == "v"),
        ('val("k") != "v"', Compare.value("k") != "v"),
        ('mod("k") > "5"', Compare.mod_revision("k") > 5),
        ('m("k") < "5"', Compare.mod_revision("k") < 5),
        ('create("k") = "0"', Compare.create_revision("k") == 0),
        ('c("k") > "1"', Compare.create_revision("k") > 1),
        ('version("k") = "2"', Compare.version("k") == 2),
        ('ver("k")="2"', Compare.version("k") == 2),
        ('lease("k") = "1a"', Compare.lease("k") == 26),
        ('value("a \\"q\\" \\x00") = "\\n"', Compare.value(b'a "q" \x00') == b"\n"),
        ('value(`raw\\`) = ""', Compare.value(b"raw\\") == b""),
    ],
)
def test_txn_compare_grammar(line: str, expected: Compare) -> None:
    assert parse_compare(line) == expected


@pytest.mark.parametrize(
    "line",
    ['value("k")', 'value(k) = "v"', 'nope("k") = "v"', 'mod("k") = "x"', 'value("k") => "v"'],
)
def test_txn_bad_compares(line: str) -> None:
    with pytest.raises(common.UsageError):
        parse_compare(line)


def test_txn_op_grammar() -> None:
    def same(a: Op, b: Op) -> bool:
        return request_op(a) == request_op(b)

    assert same(parse_op("put k v"), Op.put(b"k", b"v"))
    assert same(parse_op("put \"a b\" 'c d' --prev-kv"), Op.put(b"a b", b"c d", prev_kv=True))
    assert same(parse_op("put k v --lease=1f"), Op.put(b"k", b"v", lease=31))
    assert same(parse_op("get k --prefix --limit 2"), Op.get(b"k", prefix=True, limit=2))
    assert same(parse_op("get a c --keys-only"), Op.get(b"a", range_end=b"c", keys_only=True))
    assert same(parse_op("del k --prev-kv"), Op.delete(b"k", prev_kv=True))
    assert same(parse_op("delete k --from-key"), Op.delete(b"k", from_key=True))
    for bad in ("put k", "frob k", "get", "get k --bogus"):
        with pytest.raises(common.UsageError):
            parse_op(bad)
    assert argify('put "x\\ty" \'single "q"\' bare') == ["put", "x\ty", 'single "q"', "bare"]
    assert go_unquote('"\\u00e9\\101"') == "éA".encode()


# -- leases --------------------------------------------------------------------------


def test_lease_commands(etcd_server: Any, etcd_prefix: str, cli: Run) -> None:
    ep = etcd_server.endpoint
    granted = json.loads(cli(ep, "lease", "grant", "100", "-w", "json").out)
    lid = f"{granted['ID']:016x}"
    assert granted["TTL"] == 100
    assert cli(ep, "put", f"{etcd_prefix}leased", "v", f"--lease={lid}").code == 0

    ttl = cli(ep, "lease", "timetolive", lid, "--keys")
    assert re.fullmatch(
        rf"lease {lid} granted with TTL\(100s\), remaining\((99|100)s\), "
        rf"attached keys\(\[{etcd_prefix}leased\]\)",
        ttl.lines[0],
    ), ttl.lines
    doc = json.loads(cli(ep, "lease", "ttl", lid, "-w", "json", "--keys").out)
    assert doc["granted-ttl"] == 100
    assert [base64.b64decode(k).decode() for k in doc["keys"]] == [f"{etcd_prefix}leased"]

    listed = cli(ep, "lease", "list")
    assert re.fullmatch(r"found \d+ leases", listed.lines[0]) and lid in listed.lines[1:]
    assert granted["ID"] in [
        x["ID"] for x in json.loads(cli(ep, "lease", "list", "-w", "json").out)["leases"]
    ]

    once = cli(ep, "lease", "keep-alive", "--once", lid)
    assert once.lines == [f"lease {lid} keepalived with TTL(100)"]

    assert cli(ep, "lease", "revoke", lid).lines == [f"lease {lid} revoked"]
    assert cli(ep, "get", f"{etcd_prefix}leased").out == b""  # revoking deleted the key
    assert cli(ep, "lease", "timetolive", lid).lines == [f"lease {lid} already expired"]
    again = cli(ep, "lease", "revoke", lid)
    assert (again.code, again.err) == (1, "Error: etcdserver: requested lease not found\n")
    gone = cli(ep, "lease", "keepalive", lid)
    assert (gone.code, gone.err) == (1, f"Error: lease {lid} expired or revoked\n")


# -- settings, errors and usage ------------------------------------------------------


def test_environment_variables(
    etcd_server: Any, etcd_prefix: str, cli: Run, monkeypatch: pytest.MonkeyPatch
) -> None:
    key = f"{etcd_prefix}env"
    monkeypatch.setenv("ETCDCTL_ENDPOINTS", etcd_server.endpoint)
    monkeypatch.setenv("ETCDCTL_WRITE_OUT", "json")
    monkeypatch.setenv("ETCDCTL_COMMAND_TIMEOUT", "3s")
    monkeypatch.setenv("ETCDCTL_DIAL_TIMEOUT", "500ms")
    assert cli(None, "put", key, "v").code == 0
    doc = json.loads(cli(None, "get", key).out)
    assert base64.b64decode(doc["kvs"][0]["value"]) == b"v"
    assert cli(None, "get", key, "-w", "simple").lines == [key, "v"]  # the flag wins
    monkeypatch.setenv("ETCDCTL_WRITE_OUT", "simple")
    monkeypatch.setenv("ETCDCTL_HEX", "true")
    assert cli(None, "get", key, "--print-value-only").lines == ["\\x76"]
    # A flag after the command works too, and beats the variable.
    monkeypatch.setenv("ETCDCTL_ENDPOINTS", "127.0.0.1:1")
    assert cli(None, "get", key, f"--endpoints={etcd_server.endpoint}").code == 0


def test_etcd_errors_exit_1_with_the_server_message(
    etcd_server: Any, etcd_prefix: str, cli: Run
) -> None:
    ep = etcd_server.endpoint
    future = cli(ep, "get", f"{etcd_prefix}x", "--rev", "999999999")
    assert (future.code, future.out) == (1, b"")
    assert future.err == "Error: etcdserver: mvcc: required revision is a future revision\n"
    unknown = cli(ep, "lease", "timetolive", "--keys", "ffffffff")
    assert unknown.code == 0  # as etcdctl: an expired lease is not an error here
    busy = cli(ep, "put", f"{etcd_prefix}x", "--ignore-value")
    assert busy.code == 1 and busy.err.startswith("Error: etcdserver: key not found")
    down = cli("127.0.0.1:1", "--command-timeout=300ms", "--dial-timeout=100ms", "get", "x")
    assert down.code == 1
    # etcdctl's order: the dial fails within --dial-timeout, before any request.
    assert down.err == "Error: no etcd endpoint could be reached within 0.1 s (127.0.0.1:1)\n"


@pytest.mark.parametrize(
    ("args", "message"),
    [
        ([], "the following arguments are required: COMMAND"),
        (["frob"], "invalid choice: 'frob'"),
        (["get"], "the following arguments are required: key"),
        (["get", "k", "--limit=-1"], "must not be negative"),
        (["--command-timeout=soon", "get", "k"], "invalid duration 'soon'"),
        (["-w", "yaml", "get", "k"], "invalid choice: 'yaml'"),
        (["get", "k", "-w", "table"], "table output is not supported by 'get'"),
        (["get", "k", "z", "--prefix"], "a range end cannot be combined with --prefix"),
        (["lease", "revoke", "xyz"], "bad id 'xyz': expected hexadecimal"),
        (["lease"], "the following arguments are required: COMMAND"),
        (["elect", "name"], "elect needs a proposal (or -l to observe)"),
        (["--user", "root", "get", "k"], "no password for --user"),
        (["--user", "root:pw", "--password", "pw", "get", "k"], "not both"),
        (["--endpoints", "no-port", "get", "k"], "must look like host:port"),
        (["--cert", "c.pem", "get", "k"], "--cert and --key must be given together"),
    ],
)
def test_usage_errors_exit_2(args: list[str], message: str, cli: Run) -> None:
    res = cli(None, *args)
    assert res.code == 2, (res.out, res.err)
    assert message in res.err
    assert res.out == b""


def test_bad_environment_is_a_usage_error(cli: Run, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("ETCDCTL_COMMAND_TIMEOUT", "forever")
    res = cli(None, "get", "k")
    assert (res.code, res.err) == (
        2,
        "Error: $ETCDCTL_COMMAND_TIMEOUT: invalid duration 'forever' (use e.g. 5s, 500ms, 1m30s)\n",
    )


def _leaf_commands() -> list[list[str]]:
    def walk(parser: Any, path: list[str]) -> list[list[str]]:
        subs = [a for a in parser._actions if a.__class__.__name__ == "_SubParsersAction"]
        if not subs:
            return [path]
        out: list[list[str]] = []
        for name, child in subs[0].choices.items():
            if child.prog.split()[-1] == name:  # skip aliases
                out.extend(walk(child, [*path, name]))
        return out

    return walk(build_parser(), [])


def test_every_command_has_help(cli: Run) -> None:
    leaves = _leaf_commands()
    names = {" ".join(p) for p in leaves}
    for expected in (
        "get", "put", "del", "txn", "watch", "lock", "elect", "compaction", "demo",
        "lease grant", "lease revoke", "lease timetolive", "lease list", "lease keep-alive",
        "member list", "member add", "member remove", "member promote", "member update",
        "endpoint status", "endpoint health", "endpoint hashkv", "move-leader",
        "snapshot save", "defrag", "alarm list", "alarm disarm",
        "auth enable", "auth disable", "auth status",
        "user add", "user delete", "user get", "user list", "user passwd",
        "user grant-role", "user revoke-role",
        "role add", "role delete", "role get", "role list",
        "role grant-permission", "role revoke-permission",
    ):  # fmt: skip
        assert expected in names
    for path in leaves:
        res = cli(None, *path, "--help")
        assert res.code == 0, path
        text = res.text
        assert text.startswith(f"usage: aetcd {' '.join(path)}"), text
        assert "--endpoints" in text  # global options are listed (not in the usage line)
        assert "--endpoints" not in text.split("\n\n")[0]
    top = cli(None, "--help")
    assert top.code == 0 and "ETCDCTL_ENDPOINTS" in top.text
    version = cli(None, "version")
    assert version.lines[0].startswith("aetcd version: ")


def test_python_dash_m_and_exit_statuses() -> None:
    res = run_cli(None, "--version")
    assert res.code == 0 and res.text.startswith("aetcd ")
    bad = run_cli(None, "frob")
    assert bad.code == 2 and "invalid choice" in bad.err


# -- formats -------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("text", "seconds"),
    [
        ("5s", 5.0),
        ("500ms", 0.5),
        ("1m30s", 90.0),
        ("1.5h", 5400.0),
        ("250us", 0.00025),
        ("2", 2.0),
    ],
)
def test_parse_duration(text: str, seconds: float) -> None:
    assert common.parse_duration(text) == pytest.approx(seconds)


@pytest.mark.parametrize(
    ("seconds", "text"),
    [
        (0.002511919, "2.511919ms"),
        (0.00085, "850µs"),
        (1.5, "1.5s"),
        (125.0, "2m5s"),
        (0, "0s"),
        (3e-7, "300ns"),
    ],
)
def test_format_duration_like_go(seconds: float, text: str) -> None:
    assert output.format_duration(seconds) == text


@pytest.mark.parametrize(
    ("size", "text"),
    [(5, "5 B"), (61440, "61 kB"), (1000, "1.0 kB"), (2_100_000, "2.1 MB"), (20_480, "20 kB")],
)
def test_humanize_bytes_like_go(size: int, text: str) -> None:
    assert output.humanize_bytes(size) == text


def test_table_rendering() -> None:
    table = output.render_table(["ID", "STATUS", "N"], [["abc", "started", "12"]])
    assert table.splitlines() == [
        "+-----+---------+----+",
        "| ID  | STATUS  | N  |",
        "+-----+---------+----+",
        "| abc | started | 12 |",
        "+-----+---------+----+",
    ]
