#!/usr/bin/env bash
# bench/regions.sh: what forwarding to a tenant's home region costs (issue 12). Two
# one-node regions on this machine, each with its own redis-server and its own Postgres
# database: eu (the tenant's home) and us (cluster.peer_regions names eu). The same
# open loop runs against eu directly, then against us (every request forwarded to eu
# over the cluster endpoints), alternating, in one run.
#
#   bench/regions.sh [rate=1000] [duration_s=8] [rounds=2]
#
# Prints for each run: turns/s, p50 and p99 (from the intended send time), CPU of each
# parleyd per turn. PARLEY_BENCH_BUILD (default build/release) names the Release build.
set -euo pipefail
top=$(cd "$(dirname "$0")/.." && pwd)
cd "$top"
for lib in scripts/lib/deps.sh scripts/lib/servers.sh bench/lib.sh; do . "$lib"; done
build=${PARLEY_BENCH_BUILD:-build/release}
rate=${1:-1000} duration=${2:-8} rounds=${3:-2}
admin_token=bench-admin-$$
parley_install_deps
bench_release_build "$build" parleyd parley_loadgen
loadgen=$build/bench/loadgen/parley_loadgen

bench_workdir
parley_start_postgres "$tmp/pg"
eu_pg=$DATABASE_URL
psql "$eu_pg" -qc "CREATE DATABASE parley_us" >/dev/null
us_pg=${eu_pg/\/parley\?//parley_us?}
# Two redis-servers: the second one is ours to stop (servers.sh tracks one).
parley_start_redis "$tmp/redis-eu"
eu_redis=$REDIS_URL
redis-server --port 0 --unixsocket "$tmp/redis-us.sock" --unixsocketperm 700 --save "" \
  --appendonly no --dir "$tmp" --logfile "$tmp/redis-us.log" &
us_redis_pid=$!
us_redis=unix://$tmp/redis-us.sock
for _ in $(seq 1 100); do [ -S "$tmp/redis-us.sock" ] && break; sleep 0.05; done
export PARLEY_ADMIN_TOKEN=$admin_token

PARLEY_NODE_NAME=eu-1 PARLEY_NODE_REGION=eu REDIS_URL=$eu_redis DATABASE_URL=$eu_pg \
  bench_start_parleyd "$build/src/app/parleyd" "$tmp/eu.log"
eu_pid=$NODE_PID eu_port=$NODE_PORT
eu_cluster=
for _ in $(seq 1 200); do
  eu_cluster=$(sed -n 's/.*"cluster_listening".*"port":"\([0-9]*\)".*/\1/p' "$tmp/eu.log")
  [ -n "$eu_cluster" ] && break
  sleep 0.05
done
PARLEY_NODE_NAME=us-1 PARLEY_NODE_REGION=us REDIS_URL=$us_redis DATABASE_URL=$us_pg \
  PARLEY_CLUSTER_PEER_REGIONS="eu=127.0.0.1:$eu_cluster" \
  bench_start_parleyd "$build/src/app/parleyd" "$tmp/us.log"
us_pid=$NODE_PID us_port=$NODE_PORT
NODE_PID=
cleanup_nodes() {
  kill "$eu_pid" "$us_pid" "$us_redis_pid" 2>/dev/null || true
  wait "$eu_pid" "$us_pid" "$us_redis_pid" 2>/dev/null || true
  bench_cleanup
}
trap cleanup_nodes EXIT
for port in "$eu_port" "$us_port"; do
  for _ in $(seq 1 200); do
    curl -fs "http://127.0.0.1:$port/readyz" >/dev/null && break
    sleep 0.1
  done
done

key=$(bench_setup_tenant "http://127.0.0.1:$eu_port" "$admin_token" eu)

cpu_of() { awk '{print $14 + $15}' "/proc/$1/stat"; }
hz=$(getconf CLK_TCK)
run() {  # run NAME PORT
  local e0 u0 e1 u1
  e0=$(cpu_of "$eu_pid") u0=$(cpu_of "$us_pid")
  "$loadgen" --url "http://127.0.0.1:$2" --tenant bench --key "$key" --bot bench \
    --connections 64 --duration "$duration" --warmup 2 --rate "$rate" > "$tmp/lg.txt" || true
  e1=$(cpu_of "$eu_pid") u1=$(cpu_of "$us_pid")
  python3 - "$1" "$tmp/lg.txt" "$e0" "$e1" "$u0" "$u1" "$hz" "$duration" <<'PY'
import json, sys
name, path, e0, e1, u0, u1, hz, d = sys.argv[1:]
r = json.loads(open(path).read().strip().splitlines()[-1])
turns = r["turns_per_s"] * (float(d) + 2)  # the warm-up runs at the same rate
us = lambda a, b: (int(b) - int(a)) / int(hz) * 1e6 / turns
print(f"{name:<26} {r['turns_per_s']:>7,.0f} turns/s  p50 {r['p50_ms']:6.2f} ms  p99 {r['p99_ms']:6.2f} ms  "
      f"errors {r['errors']}  CPU/turn: eu {us(e0, e1):5.1f} us, us {us(u0, u1):5.1f} us")
PY
}
echo "machine: $(nproc) cores, $(. /etc/os-release; echo "$PRETTY_NAME"); load average before: $(cut -d' ' -f1-3 /proc/loadavg)"
echo "open loop of $rate turns/s, 64 connections, $duration s measured"
for _ in $(seq 1 "$rounds"); do
  run "to eu (the home region)" "$eu_port"
  run "to us (forwarded to eu)" "$us_port"
done
echo "load average after: $(cut -d' ' -f1-3 /proc/loadavg)"
