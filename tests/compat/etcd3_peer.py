"""A python-etcd3 0.12 process driven line by line over stdin (for the interop tests).

Run with ``PROTOCOL_BUFFERS_PYTHON_IMPLEMENTATION=python`` (python-etcd3 imports
only with the pure-Python protobuf). Commands: ``acquire <timeout>``,
``release``, ``is_acquired``, ``quit``; each answers one line.
"""

import sys

import etcd3

host, port, name = sys.argv[1], int(sys.argv[2]), sys.argv[3]
client = etcd3.client(host=host, port=port)
lock = client.lock(name, ttl=30)
print("ready", flush=True)
for line in sys.stdin:
    cmd, *args = line.split()
    if cmd == "acquire":
        print(lock.acquire(timeout=float(args[0])), flush=True)
    elif cmd == "release":
        print(lock.release(), flush=True)
    elif cmd == "is_acquired":
        print(lock.is_acquired(), flush=True)
    elif cmd == "quit":
        break
