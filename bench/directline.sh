#!/usr/bin/env bash
# bench/directline.sh: Direct Line 3.0 conversations held open over WebSockets on one
# node, their memory, and turns over the sockets at a fixed rate (issue 13).
#
#   bench/directline.sh [conversations=10000] [rate=1000] [duration_s=20]
#
# Installs what is missing, builds Release (build/release: parleyd), starts a private
# Redis and Postgres and parleyd, gives the tenant "bench" a Direct Line secret for its
# bench bot (the tenant secret directline.bench), then runs bench/directline/ws_load.js
# (Node, the `ws` package of tests/e2e): start the conversations, open a socket each,
# read the node's resident memory, then <rate> turns/s over the sockets. Also prints
# the node's CPU seconds and context switches per turn during the turns, which do not
# depend on how fast the machine is.
# PARLEY_BENCH_BUILD (default build/release) sets the build folder.
set -euo pipefail
top=$(cd "$(dirname "$0")/.." && pwd)
cd "$top"
. scripts/lib/deps.sh
. scripts/lib/servers.sh
. bench/lib.sh
conversations=${1:-10000}
rate=${2:-1000}
duration=${3:-20}
build=${PARLEY_BENCH_BUILD:-build/release}
admin_token=bench-admin-$$

parley_install_deps
bench_release_build "$build" parleyd
[ -d tests/e2e/node_modules/ws ] || (cd tests/e2e && npm ci --no-audit --no-fund >/dev/null)
bench_workdir
# Two descriptors per conversation on the node (its socket and, briefly, Redis) and one
# in the client: raise the limit for both (root may; otherwise the hard limit).
ulimit -n 200000 2>/dev/null || ulimit -n "$(ulimit -Hn)"

parley_start_redis "$tmp/redis"
parley_start_postgres "$tmp/pg"

export PARLEY_SECRETS_KEY=${PARLEY_SECRETS_KEY:-$(openssl rand -hex 32)}
# Every client of the bench comes from 127.0.0.1: no cap per address (256 by default).
PARLEY_ADMIN_TOKEN=$admin_token PARLEY_DIRECTLINE_TOKEN_KEY=$(openssl rand -hex 32) \
  PARLEY_HTTP_MAX_CONNECTIONS_PER_ADDRESS=0 bench_start_parleyd "$build/src/app/parleyd" "$tmp/parleyd.log"
node=http://127.0.0.1:$NODE_PORT
for _ in $(seq 1 200); do curl -fs "$node/readyz" >/dev/null && break; sleep 0.1; done
bench_setup_tenant "$node" "$admin_token" >/dev/null
# A Direct Line secret names its tenant and bot: dl1~tenant~bot~random.
secret="dl1~bench~bench~$(openssl rand -hex 24)"
curl -fs -o /dev/null -X PUT -H "Authorization: Bearer $admin_token" -H 'Content-Type: application/json' \
  -d "{\"value\":\"$secret\"}" "$node/admin/v1/tenants/bench/secrets/directline.bench"

# cpu_ticks PID: user + system clock ticks of the process so far.
cpu_ticks() { awk '{print $14 + $15}' "/proc/$1/stat"; }
ctx() { cat /proc/"$1"/task/*/status 2>/dev/null | awk '/ctxt_switches/ {s += $2} END {print s}'; }

echo "machine: $(nproc) cores, $(awk '/MemTotal/ {printf "%.0f GiB", $2/1048576}' /proc/meminfo), $(. /etc/os-release; echo "$PRETTY_NAME"); load average before: $(cut -d' ' -f1-3 /proc/loadavg)"
echo "== $conversations Direct Line conversations over WebSockets, then $rate turns/s for ${duration}s"
NODE_PATH=$top/tests/e2e/node_modules node bench/directline/ws_load.js --url "$node" --secret "$secret" \
  --conversations "$conversations" --rate "$rate" --duration "$duration" --pid "$NODE_PID" \
  > >(tee "$tmp/ws_load.txt") &
client=$!
# The node's CPU and context switches while the turns run: from the "sockets" line to the end.
for _ in $(seq 1 1200); do grep -q '^sockets' "$tmp/ws_load.txt" 2>/dev/null && break; sleep 0.1; done
sleep 3  # the client's settle time before the turns
c0=$(cpu_ticks "$NODE_PID"); x0=$(ctx "$NODE_PID")
perf_pid=
if command -v perf >/dev/null; then
  perf stat -e raw_syscalls:sys_enter -p "$NODE_PID" -o "$tmp/perf.txt" -- sleep "$((duration + 2))" 2>/dev/null &
  perf_pid=$!
fi
wait "$client" || { echo "ws_load failed" >&2; exit 1; }
[ -n "$perf_pid" ] && { wait "$perf_pid" || true; }
c1=$(cpu_ticks "$NODE_PID"); x1=$(ctx "$NODE_PID")
sys=$([ -n "$perf_pid" ] && awk '/raw_syscalls:sys_enter/ {gsub(",", "", $1); print $1}' "$tmp/perf.txt")
turns=$(tail -1 "$tmp/ws_load.txt" | python3 -c 'import json,sys; print(json.load(sys.stdin)["sent"])')
python3 -c "
t = max($turns, 1); hz = $(getconf CLK_TCK)
sysc = ${sys:-0}
print(f'node      {($c1 - $c0) / hz / t * 1e6:.0f} us CPU, {($x1 - $x0) / t:.2f} context switches'
      + (f', {sysc / t:.1f} syscalls' if sysc else '') + ' per turn sent (all its threads, the warm-up included)')"
