"""The README's Python code blocks run, against a real etcd."""

from __future__ import annotations

import re
import textwrap
from pathlib import Path

import pytest

README = Path(__file__).resolve().parent.parent / "README.md"
BLOCKS = re.findall(r"```python\n(.*?)```", README.read_text(), re.S)


def test_readme_has_code() -> None:
    assert len(BLOCKS) >= 4


@pytest.mark.parametrize("index", range(len(BLOCKS)))
async def test_readme_block_runs(index: int, etcd_server: object) -> None:
    code = BLOCKS[index].replace("127.0.0.1:2379", etcd_server.endpoint)  # type: ignore[attr-defined]
    source = "async def __block():\n    import aetcd\n" + textwrap.indent(code, "    ")
    namespace: dict[str, object] = {}
    exec(compile(source, f"README block {index}", "exec"), namespace)
    await namespace["__block"]()  # type: ignore[operator]
