#!/usr/bin/env bash
# Compares tandem binaries (or settings) on this machine, whose speed moves
# by up to 2x within the hour: each round starts a fresh 3-node loopback
# cluster (plain mode, default durability) for each binary in turn and
# runs the same workloads against it, so a before/after pair is minutes
# apart. One line per run.
#
#   scripts/bench-ab.sh 3 "write transfer" /tmp/tandem-old bin/tandem
#   ENVS="GOMAXPROCS=2 GOMAXPROCS=4" scripts/bench-ab.sh 2 write bin/tandem
#   DURATION=8s MUX=0 scripts/bench-ab.sh 2 write old new   # HTTP/1.1 clients
#
# With ENVS each binary runs once per environment setting (one VAR=value
# each, given to the nodes; "default" for none). Contract workloads build
# examples/token first.
set -euo pipefail
cd "$(dirname "$0")/.."

rounds=${1:?usage: bench-ab.sh ROUNDS "WORKLOADS" BIN...}
workloads=${2:?usage: bench-ab.sh ROUNDS "WORKLOADS" BIN...}
shift 2
[ $# -gt 0 ] || { echo "usage: bench-ab.sh ROUNDS \"WORKLOADS\" BIN..." >&2; exit 2; }
DURATION=${DURATION:-8s}
WARMUP=${WARMUP:-2s}
MUX=${MUX:-1}
BASE_HTTP=${BASE_HTTP:-17701}
BASE_RAFT=${BASE_RAFT:-18701}
read -r -a envs <<<"${ENVS:-default}"

work=$(mktemp -d /tmp/tandem-ab-XXXXXX)
pids=()
stop() { kill "${pids[@]}" 2>/dev/null || true; wait 2>/dev/null || true; pids=(); rm -rf "$work/data"; }
trap 'stop; rm -rf "$work"' EXIT
CGO_ENABLED=0 go build -o "$work/tandem" ./cmd/tandem # the load generator, the same for every run
if [[ " $workloads " == *" transfer"* ]]; then
  "$work/tandem" contract build ./examples/token -o "$work/token.wasm" >/dev/null
fi

source scripts/loopback-cluster.sh
start() { # binary env
  if [ "$2" = default ]; then
    start_cluster "$1" "$work/data" "$BASE_HTTP" "$BASE_RAFT"
  else
    start_cluster "$1" "$work/data" "$BASE_HTTP" "$BASE_RAFT" "$2"
  fi
}

addrs=$(for i in 1 2 3; do printf 'http://127.0.0.1:%d,' $((BASE_HTTP + i - 1)); done)
addrs=${addrs%,}
mux=(--multiplex "$MUX") # 0: HTTP/1.1
echo "machine: $(nproc) cores; $(date -u +%Y-%m-%dT%H:%MZ); $DURATION per run; multiplex ${MUX}"
for r in $(seq 1 "$rounds"); do
  for bin in "$@"; do
    for e in "${envs[@]}"; do
      start "$bin" "$e"
      for w in $workloads; do
        extra=()
        [[ $w == transfer* ]] && extra=(--keys 10000 --contract "$work/token.wasm")
        "$work/tandem" bench --addrs "$addrs" --workload "$w" --clients "${CLIENTS:-64}" --duration "$DURATION" \
          --warmup "$WARMUP" "${mux[@]}" "${extra[@]}" 2>/dev/null |
          awk -v r="$r" -v b="$bin" -v e="$e" -v w="$w" '/^ops\/s/{o=$2} /^latency/{p50=$3; p99=$5} /^errors/{er=$2}
            END{printf "round %s  %-28s %-18s %-18s %9.0f ops/s  p50 %-9s p99 %-9s errors %s\n", r, b, e, w, o, p50, p99, er}'
      done
      stop
    done
  done
done
