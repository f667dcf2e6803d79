#!/usr/bin/env bash
# bench/region.sh: the routing's cost (issue 12). One parleyd, then a three-node region
# on this same machine sharing one Redis and Postgres, in one run, with the same closed
# loop against the first node (so about two turns in three are forwarded to their
# owner over CAF's middleman). On 2 cores this shows what routing costs, not scaling.
#
#   bench/region.sh [duration_s=8] [connections=64] [turns_per_session=8]
#   bench/region.sh join [rate=2000]
#   bench/region.sh boot [rate=2000]
#
# `join`: a three-node region under an open loop of `rate` turns/s against the first
# node for 24 s; a fourth node joins at 6 s and the second is drained (SIGTERM) at 14 s.
# Prints p99 per second (loadgen --timeline) beside the steady p99 of seconds 1-5.
# `boot`: the same, but the fourth node starts in a region of its own, so it joins
# nothing: what starting a parleyd costs the others on this machine, no shard moving.
# PARLEY_BENCH_LOGS=DIR keeps the nodes' logs and the load generator's output there.
#
# Prints for each: turns/s, CPU seconds of all parleyd processes per turn, syscalls
# per turn (perf stat -e raw_syscalls:sys_enter on every parleyd), the share of turns
# forwarded. PARLEY_BENCH_BUILD (default build/release) names the Release build;
# PARLEY_BENCH_PARLEYD, another parleyd binary to run instead of its own (an A/B run).
set -euo pipefail
top=$(cd "$(dirname "$0")/.." && pwd)
cd "$top"
for lib in scripts/lib/deps.sh scripts/lib/servers.sh bench/lib.sh; do . "$lib"; done
build=${PARLEY_BENCH_BUILD:-build/release}
if [ "${1:-}" = join ] || [ "${1:-}" = boot ]; then
  duration=8 conns=64 turns=8
else
  duration=${1:-8} conns=${2:-64} turns=${3:-8}
fi
admin_token=bench-admin-$$
parley_install_deps
bench_release_build "$build" parleyd parley_loadgen
loadgen=$build/bench/loadgen/parley_loadgen
parleyd=${PARLEY_BENCH_PARLEYD:-$build/src/app/parleyd}

bench_workdir
parley_start_redis "$tmp/redis"
parley_start_postgres "$tmp/pg"
export PARLEY_ADMIN_TOKEN=$admin_token

pids=()
ports=()
start_nodes() {  # start_nodes N: nodes bench-1..N; waits until the region settled
  local n=$1 i
  pids=()
  ports=()
  for i in $(seq 1 "$n"); do
    PARLEY_NODE_NAME=bench-$i bench_start_parleyd "$parleyd" "$tmp/node-$n-$i.log"
    pids+=("$NODE_PID")
    ports+=("$NODE_PORT")
  done
  # Settled: every node up, every shard held, none moving (two equal readings).
  local last="" now=""
  for _ in $(seq 1 300); do
    now=$(curl -fs -H "Authorization: Bearer $admin_token" "http://127.0.0.1:${ports[0]}/admin/v1/cluster" |
      python3 -c "import json,sys; d=json.load(sys.stdin); n=[x for x in d['nodes'] if x['state']=='up']; print(len(n), sum(x['shards_owned'] for x in n), sorted(x['shards_owned'] for x in n))" 2>/dev/null || true)
    if [ "$now" = "$last" ] && [ "${now%% *}" = "$n" ] && [ "$(echo "$now" | cut -d' ' -f2)" = 1024 ]; then return 0; fi
    last=$now
    sleep 0.5
  done
  echo "region of $n did not settle: $now" >&2
  return 1
}
stop_nodes() {
  local p
  for p in "${pids[@]}"; do kill "$p" 2>/dev/null || true; done
  for p in "${pids[@]}"; do wait "$p" 2>/dev/null || true; done
}
cpu_of() {  # total utime+stime ticks of the pids
  local p t=0
  for p in "$@"; do t=$((t + $(awk '{print $14 + $15}' "/proc/$p/stat"))); done
  echo "$t"
}
metric_sum() {  # metric_sum NAME: the metric summed over the nodes
  local port s=0 v
  for port in "${ports[@]}"; do
    v=$(curl -fs "http://127.0.0.1:$port/metrics" | awk -v n="$1" '$1 == n {printf "%d", $2}')
    s=$((s + ${v:-0}))
  done
  echo "$s"
}

key=
setup_tenant() { key=$(bench_setup_tenant "http://127.0.0.1:${ports[0]}" "$admin_token"); }

run() {  # run N: N nodes, the closed loop against the first
  local n=$1
  start_nodes "$n"
  [ -n "$key" ] || setup_tenant
  local hz; hz=$(getconf CLK_TCK)
  local fwd0; fwd0=$(metric_sum parley_cluster_forwarded_turns_total)
  local cpu0; cpu0=$(cpu_of "${pids[@]}")
  local pidlist; pidlist=$(IFS=,; echo "${pids[*]}")
  perf stat -e raw_syscalls:sys_enter -p "$pidlist" -o "$tmp/perf-$n.txt" -- sleep "$((duration + 2))" 2>/dev/null &
  local perf_pid=$!
  "$loadgen" --url "http://127.0.0.1:${ports[0]}" --tenant bench --key "$key" --bot bench \
    --turns-per-session "$turns" --connections "$conns" --duration "$duration" --warmup 2 > "$tmp/lg-$n.txt" || true
  wait "$perf_pid" || true
  local cpu1; cpu1=$(cpu_of "${pids[@]}")
  local fwd1; fwd1=$(metric_sum parley_cluster_forwarded_turns_total)
  local tps; tps=$(python3 -c "import json; print(json.loads(open('$tmp/lg-$n.txt').read().strip().splitlines()[-1])['turns_per_s'])")
  local sys; sys=$(awk '/raw_syscalls:sys_enter/ {gsub(",", "", $1); print $1}' "$tmp/perf-$n.txt")
  python3 - "$n" "$tps" "$cpu0" "$cpu1" "$hz" "${sys:-0}" "$fwd0" "$fwd1" "$duration" <<'PY'
import sys
n, tps, c0, c1, hz, sysc, f0, f1, d = sys.argv[1:]
tps, secs = float(tps), float(d) + 2
turns = tps * secs  # the warm-up runs at about the same rate
cpu = (int(c1) - int(c0)) / int(hz)
print(f"{n} node(s): {tps:,.0f} turns/s; parleyd CPU {cpu * 1e6 / turns:.1f} us/turn; "
      f"syscalls {int(sysc) / turns:.1f}/turn; forwarded {(int(f1) - int(f0)) / turns:.0%} of turns")
PY
  stop_nodes
}

join_run() {  # join_run RATE [REGION of the fourth node]
  start_nodes 3
  setup_tenant
  local first=${ports[0]}
  "$loadgen" --url "http://127.0.0.1:$first" --tenant bench --key "$key" --bot bench \
    --turns-per-session "$turns" --connections "$conns" --duration 24 --warmup 2 --rate "$1" \
    --timeline > "$tmp/join.txt" 2>&1 &
  local lg=$!
  sleep 8   # 2 s warm-up + 6 s
  PARLEY_NODE_REGION=${2:-local} PARLEY_NODE_NAME=bench-4 bench_start_parleyd "$parleyd" "$tmp/node-join-4.log"
  pids+=("$NODE_PID")
  sleep 8
  kill -TERM "${pids[1]}"
  wait "$lg" || true
  if [ -n "${PARLEY_BENCH_LOGS:-}" ]; then mkdir -p "$PARLEY_BENCH_LOGS" && cp "$tmp"/node-*.log "$tmp/join.txt" "$PARLEY_BENCH_LOGS/"; fi
  grep '^second' "$tmp/join.txt"
  python3 - "$tmp/join.txt" "${2:-local}" <<'PY'
import re, sys
p99 = {int(m.group(1)): float(m.group(2)) for m in
       re.finditer(r"second\s+(\d+)\s+\d+ turns\s+p50\s+[\d.]+ ms\s+p99\s+([\d.]+) ms", open(sys.argv[1]).read())}
steady = sorted(v for k, v in p99.items() if 1 <= k <= 5)
join = max(v for k, v in p99.items() if 6 <= k <= 13)
drain = max(v for k, v in p99.items() if 14 <= k <= 23)
base = steady[len(steady) // 2]
what = "join" if sys.argv[2] == "local" else "fourth node's start (it joins nothing)"
print(f"steady p99 (median of seconds 1-5) {base:.2f} ms; worst second's p99 during the {what} {join:.2f} ms "
      f"({join / base:.1f}x), during the drain {drain:.2f} ms ({drain / base:.1f}x); goal <= 2x")
PY
  stop_nodes
}

echo "machine: $(nproc) cores, $(. /etc/os-release; echo "$PRETTY_NAME"); load average before: $(cut -d' ' -f1-3 /proc/loadavg)"
if [ "${1:-}" = join ]; then
  join_run "${2:-2000}"
  exit 0
fi
if [ "${1:-}" = boot ]; then
  join_run "${2:-2000}" bench-boot
  exit 0
fi
run 1
run 3
run 1
echo "load average after: $(cut -d' ' -f1-3 /proc/loadavg)"
