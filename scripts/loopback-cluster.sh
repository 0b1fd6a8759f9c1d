# Sourced by the benchmark scripts: starts and stops a plain-mode 3-node
# cluster on loopback (each node its own process, default durability).
#
#   start_cluster BIN DIR BASE_HTTP BASE_RAFT [VAR=value...]
#       nodes n1..n3 with data and logs under DIR, HTTP on BASE_HTTP..+2,
#       Raft on BASE_RAFT..+2, the given environment; their PIDs are
#       appended to the array pids, their base URLs set in cluster_addrs
#       (comma-separated). Returns when every node is ready.

start_cluster() {
  local bin=$1 dir=$2 http=$3 raft=$4 i extra
  shift 4
  mkdir -p "$dir"
  cluster_addrs=""
  for i in 1 2 3; do
    extra=(--join "http://127.0.0.1:$http")
    [ "$i" = 1 ] && extra=(--bootstrap)
    env "$@" "$bin" serve --id "n$i" --data "$dir/n$i" --http "127.0.0.1:$((http + i - 1))" \
      --raft "127.0.0.1:$((raft + i - 1))" --insecure --log-level warn "${extra[@]}" >"$dir/n$i.log" 2>&1 &
    pids+=($!)
    for _ in $(seq 1 300); do curl -sf "http://127.0.0.1:$((http + i - 1))/readyz" >/dev/null && break; sleep 0.1; done
    cluster_addrs+="${cluster_addrs:+,}http://127.0.0.1:$((http + i - 1))"
  done
  sleep 1
}
