#!/usr/bin/env bash
# Benchmarks Tandem and etcd side by side (bench/compare): installs
# Debian's etcd-server (3.4) if `etcd` is missing, builds Tandem, then runs
# the comparison and writes report.md, results.json and charts to OUT.
#
#   scripts/bench-compare.sh                        # 10 s per step, into bench-compare-out/
#   DURATION=3s OUT=docs/bench scripts/bench-compare.sh
#   scripts/bench-compare.sh -systems tandem        # extra flags go to the program
set -euo pipefail
cd "$(dirname "$0")/.."

DURATION=${DURATION:-10s}
WARMUP=${WARMUP:-1s}
OUT=${OUT:-bench-compare-out}

if ! command -v etcd >/dev/null; then
  echo "etcd not found: installing Debian's etcd-server" >&2
  sudo=""; [ "$(id -u)" = 0 ] || sudo=sudo
  $sudo apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -qq etcd-server >/dev/null
  # The package may start a system etcd on 2379; the benchmark uses its own
  # ports and data, so that one is left alone.
fi

CGO_ENABLED=0 go build -o bin/tandem ./cmd/tandem
go run ./bench/compare -tandem-bin bin/tandem -out "$OUT" \
  -duration "$DURATION" -warmup "$WARMUP" "$@"
echo "report: $OUT/report.md" >&2
