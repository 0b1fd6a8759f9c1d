#!/usr/bin/env bash
# Reproduces the core figures in docs/benchmarks.md: starts a 3-node
# cluster on loopback (each node its own process, data on this disk,
# default durability: the Raft log is fsynced), then drives it with
# `tandem bench`, clients spread over all three nodes.
#
#   scripts/bench-core.sh                  # all workloads, 10s each
#   DURATION=5s scripts/bench-core.sh
#   LOG_STORE=bolt scripts/bench-core.sh   # raft-boltdb instead of raft-wal
#   CONTRACTS=1 scripts/bench-core.sh      # also the token contract workloads (issue 3)
#   SECURE=1 scripts/bench-core.sh         # secure mode (HTTPS API, mTLS Raft, authentication) instead of --insecure
#   MUX=4 scripts/bench-core.sh            # 4 multiplexed connections per node for the /v1/mux runs (0: none)
#
# The published figures are plain (--insecure), as the etcd comparison is.
set -euo pipefail
cd "$(dirname "$0")/.."

DURATION=${DURATION:-10s}
WARMUP=${WARMUP:-2s}
LOG_STORE=${LOG_STORE:-wal}
BASE_HTTP=${BASE_HTTP:-17601}
BASE_RAFT=${BASE_RAFT:-18601}
SECURE=${SECURE:-}

CGO_ENABLED=0 go build -o bin/tandem ./cmd/tandem
data=$(mktemp -d /tmp/tandem-bench-XXXXXX)
pids=()
cleanup() { kill "${pids[@]}" 2>/dev/null || true; wait 2>/dev/null || true; rm -rf "$data"; }
trap cleanup EXIT

scheme=http; security=(--insecure); tls=()
if [ -n "$SECURE" ]; then
  scheme=https; security=(); tls=(--ca-file "$data/n1/ca.crt")
  # The bootstrap node creates the admin; token creation and the load use it.
  export TANDEM_ADMIN_PASSWORD=bench-admin-password TANDEM_USER=admin TANDEM_PASSWORD=bench-admin-password
fi
ready() { # base URL
  for _ in $(seq 1 300); do
    if [ -n "$SECURE" ]; then curl -sf --cacert "$data/n1/ca.crt" "$1/readyz" >/dev/null && return; else curl -sf "$1/readyz" >/dev/null && return; fi
    sleep 0.1
  done
}
addrs=()
for i in 1 2 3; do
  http=127.0.0.1:$((BASE_HTTP + i - 1)); raft=127.0.0.1:$((BASE_RAFT + i - 1))
  extra=(--join "$scheme://127.0.0.1:$BASE_HTTP")
  [ "$i" = 1 ] && extra=(--bootstrap)
  if [ "$i" != 1 ] && [ -n "$SECURE" ]; then
    export TANDEM_JOIN_TOKEN; TANDEM_JOIN_TOKEN=$(bin/tandem token create --addr "${addrs[0]}" "${tls[@]}" 2>/dev/null)
  fi
  bin/tandem serve --id "n$i" --data "$data/n$i" --http "$http" --raft "$raft" \
    --log-store "$LOG_STORE" --log-level warn "${security[@]}" "${extra[@]}" >"$data/n$i.log" 2>&1 &
  pids+=($!)
  addrs+=("$scheme://$http")
  ready "$scheme://$http"
done
all=$(IFS=,; echo "${addrs[*]}")
sleep 1

echo "machine: $(nproc) cores, $(free -g | awk '/Mem:/{print $2}') GiB; log store: $LOG_STORE; secure: ${SECURE:-no}; $(date -u +%Y-%m-%dT%H:%MZ)"
run() { # workload clients [extra bench flags]
  local w=$1 c=$2; shift 2
  local how=http; [[ " $* " == *" --multiplex "[1-9]* ]] && how=mux
  # --multiplex 0 first: a later --multiplex N in "$@" overrides it.
  bin/tandem bench --addrs "$all" "${tls[@]}" --workload "$w" --clients "$c" --duration "$DURATION" --multiplex 0 \
    --warmup "$WARMUP" --keys "${KEYS:-100000}" --value-size 256 "$@" 2>/dev/null |
    awk -v c="$c" -v how="$how" '/^workload/{w=$2} /^ops\/s/{o=$2} /^latency/{l=$0; sub(/^latency +/, "", l)} /^errors/{e=$2} /^cold start/{cs=$0}
      END{printf "%-18s %-4s C=%-4s %9.0f ops/s  %s  errors %s  %s\n", w, how, c, o, l, e, cs}'
}
# Each workload over HTTP/1.1 (a connection per client), then the C=64
# ones through the Go client's multiplexed connections (MUX per node,
# default 1; MUX=0 skips them).
MUX=${MUX:-1}
mux=(); if [ "$MUX" != 0 ]; then mux=(--multiplex "$MUX"); fi
run write 1
run write 16
run write 64
run read-local 64
run read-linearizable 64
run mixed 64
run tx 64
if [ "$MUX" != 0 ]; then
  for w in write read-local read-linearizable mixed tx; do run "$w" 64 "${mux[@]}"; done
fi
if [ -n "${CONTRACTS:-}" ]; then
  bin/tandem contract build ./examples/token -o "$data/token.wasm" >/dev/null
  for w in transfer transfer-hot transfer-tx; do
    KEYS=10000 run "$w" 64 --contract "$data/token.wasm"
    if [ "$MUX" != 0 ]; then KEYS=10000 run "$w" 64 --contract "$data/token.wasm" "${mux[@]}"; fi
  done
fi
