"""etcd v3 wire types and gRPC stubs, generated from protos/ by scripts/genproto.

Never edit these files by hand: change protos/*.proto and rerun scripts/genproto.
"""
