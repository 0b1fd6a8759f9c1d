#!/usr/bin/env bash
# Measures a node's memory after many contract deploys (docs/benchmarks.md,
# "Contract modules in memory"): one node, N deploys of the example token,
# each a distinct module (the same code with a custom section appended, so
# a different hash), one call on each; RSS and the number of compiled
# modules right after, then after the retention minute.
#
#   scripts/contract-memory.sh            # N=10, WAIT=70
#   BIN=path/to/tandem N=20 scripts/contract-memory.sh
set -euo pipefail
cd "$(dirname "$0")/.."

BIN=${BIN:-bin/tandem}
N=${N:-10}
WAIT=${WAIT:-70}
PORT=${PORT:-18080}
[ -x "$BIN" ] || make build
WASM=$(mktemp --suffix .wasm)
"$BIN" contract build ./examples/token -o "$WASM" >/dev/null
DATA=$(mktemp -d)
"$BIN" serve --id m1 --data "$DATA" --http 127.0.0.1:$PORT --raft 127.0.0.1:$((PORT + 1)) \
	--bootstrap --insecure --log-level warn >"$DATA/node.log" 2>&1 &
PID=$!
trap 'kill $PID 2>/dev/null; wait $PID 2>/dev/null; rm -rf "$DATA" "$WASM"' EXIT
URL=http://127.0.0.1:$PORT
for _ in $(seq 100); do curl -sf $URL/readyz >/dev/null && break; sleep 0.2; done
curl -sf -X PUT $URL/v1/tables/token_accounts -d '{"primary_key":"id","attributes":{"balance":"int"}}' >/dev/null
curl -sf -X PUT $URL/v1/tables/token_meta -d '{"primary_key":"id"}' >/dev/null
for i in $(seq "$N"); do
	# A custom section (id 0): size, name length, name, payload.
	name="variant$i"
	payload="$name-payload"
	size=$((1 + ${#name} + ${#payload}))
	{ cat "$WASM"; printf "\\x00\\x$(printf %02x $size)\\x$(printf %02x ${#name})%s%s" "$name" "$payload"; } >"$DATA/v.wasm"
	curl -sf -X PUT $URL/v1/contracts/token -H 'Content-Type: application/wasm' --data-binary @"$DATA/v.wasm" >/dev/null
	curl -s -X POST $URL/v1/contracts/token/supply -d '{}' >/dev/null # any answer: the module ran
done
rss() { awk '/VmRSS/{printf "%.0f MiB", $2/1024}' /proc/$PID/status; }
modules() { curl -s $URL/metrics | awk '/^tandem_contract_modules_loaded/{print $2}'; }
echo "after $N deploys and calls: RSS $(rss), $(modules) modules compiled"
sleep "$WAIT"
echo "$WAIT s later:               RSS $(rss), $(modules) modules compiled"
