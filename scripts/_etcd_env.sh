# Sourced by scripts/demo and scripts/bench (tests/conftest.py does the same
# for pytest): run on the etcd that scripts/fetch-etcd put in .etcd/bin
# (Debian's 3.5.16) unless $AETCD_ETCD_BIN / $AETCD_ETCDCTL_BIN say otherwise.
if [ -x .etcd/bin/etcd ]; then
    export AETCD_ETCD_BIN="${AETCD_ETCD_BIN:-$PWD/.etcd/bin/etcd}"
    export AETCD_ETCDCTL_BIN="${AETCD_ETCDCTL_BIN:-$PWD/.etcd/bin/etcdctl}"
fi
