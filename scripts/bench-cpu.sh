#!/usr/bin/env bash
# Where a workload's CPU goes, per operation: starts a fresh 3-node
# loopback cluster (plain mode, default durability) from BIN, warms it up,
# then runs one 10 s `tandem bench` and prints the throughput, the Raft
# entries' average size, and the CPU each node process, the load generator
# and the whole machine spent per operation (from /proc: user + system
# time). On this VM, whose speed moves by up to 2x within the hour, CPU per
# operation moves much less than throughput: it is the figure to compare
# binaries or settings by (alternate them, as bench-ab.sh does).
#
#   scripts/bench-cpu.sh bin/tandem
#   scripts/bench-cpu.sh bin/tandem --clients 128
#   ENVS="GOGC=200" scripts/bench-cpu.sh bin/tandem      # environment of the nodes
#
# Extra arguments go to `tandem bench` (default: --workload write
# --clients 64 --multiplex 1).
set -euo pipefail
cd "$(dirname "$0")/.."

bin=${1:?usage: bench-cpu.sh BIN [tandem bench flags]}
shift
BASE_HTTP=${BASE_HTTP:-17801}
BASE_RAFT=${BASE_RAFT:-18801}
DURATION=${DURATION:-10s}
read -r -a envs <<<"${ENVS:-}"

work=$(mktemp -d /tmp/tandem-cpu-XXXXXX)
pids=()
trap 'kill "${pids[@]}" 2>/dev/null || true; wait 2>/dev/null || true; rm -rf "$work"' EXIT
source scripts/loopback-cluster.sh
start_cluster "$bin" "$work" "$BASE_HTTP" "$BASE_RAFT" "${envs[@]}"
load=(--addrs "$cluster_addrs" --workload write --clients 64 --multiplex 1 "$@")

"$bin" bench "${load[@]}" --duration 4s --warmup 1s >/dev/null 2>&1 # warm-up: table, caches, Pebble
ticks() { for p in "${pids[@]}"; do awk '{print $14 + $15}' "/proc/$p/stat"; done | paste -sd' '; }
machine() { awk '/^cpu /{print $2 + $3 + $4 + $7 + $8}' /proc/stat; }
applied() { curl -s "http://127.0.0.1:$BASE_HTTP/metrics" | awk '/^tandem_applied_index /{print $2}'; }

t0=$(ticks); m0=$(machine); i0=$(applied)
out=$( { /usr/bin/time -f "client-cpu %U %S" "$bin" bench "${load[@]}" --duration "$DURATION" --warmup 0s --json; } 2>&1 )
t1=$(ticks); m1=$(machine); i1=$(applied)

python3 - "$out" "$t0" "$t1" "$m0" "$m1" "$i0" "$i1" <<'PY'
import json, sys
out, t0, t1, m0, m1, i0, i1 = sys.argv[1:]
res = json.loads(out[out.index('{'):out.rindex('}') + 1])
client = next(l.split() for l in out.splitlines() if l.startswith('client-cpu'))
ops = res['ops']
us = lambda ticks: ticks * 1e4 / ops  # clock ticks (1/100 s) -> µs per op
nodes = [us(b - a) for a, b in zip(map(int, t0.split()), map(int, t1.split()))]
print(f"ops/s {res['ops_per_sec']:.0f}  p99 {res['latency']['p99_ns'] / 1e6:.1f} ms  "
      f"ops/entry {ops / max(int(i1) - int(i0), 1):.1f}  "
      f"CPU µs/op: nodes {' '.join(f'{n:.1f}' for n in nodes)} (sum {sum(nodes):.1f})  "
      f"client {(float(client[1]) + float(client[2])) * 1e6 / ops:.1f}  machine {us(int(m1) - int(m0)):.1f}")
PY
