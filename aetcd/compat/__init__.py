"""Drop-in replacements for other etcd client libraries, built on :mod:`aetcd.sync`.

``from aetcd.compat import etcd3`` replaces ``import etcd3`` (python-etcd3 0.12).
"""
