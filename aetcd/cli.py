"""The ``aetcd`` command line: an etcdctl-like tool built on aetcd's public API.

Run it as ``python -m aetcd ...`` (or the ``aetcd`` console script);
``aetcd --help`` lists the commands, ``aetcd COMMAND --help`` their options.
:func:`main` runs it in-process and returns the exit status.
"""

from ._cli.app import main

__all__ = ["main"]
