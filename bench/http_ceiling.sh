#!/usr/bin/env bash
# bench/http_ceiling.sh: /healthz throughput of parleyd beside nginx's static
# response on the same machine, in the same run, with the same wrk load.
#
#   bench/http_ceiling.sh [duration=10s] [connections=64]
#
# Builds parleyd in Release (build/release, or $PARLEY_BENCH_BUILD so engineers
# sharing one working tree keep their own build folders), starts nginx on a free port with a
# private config, runs `wrk -t2 -cN -dD` against each in turn, prints both rates and
# the ratio. Installs wrk and nginx from Debian when missing.
set -euo pipefail
top=$(cd "$(dirname "$0")/.." && pwd)
cd "$top"
. scripts/lib/deps.sh
. scripts/lib/servers.sh
. bench/lib.sh
duration=${1:-10s}
conns=${2:-64}

parley_install_deps
bench_install wrk nginx
export CCACHE_DIR=${CCACHE_DIR:-$top/.cache/ccache}
build=${PARLEY_BENCH_BUILD:-build/release}
cmake -S . -B "$build" -G Ninja -DCMAKE_BUILD_TYPE=Release -DPARLEY_BUILD_TESTS=OFF -DPARLEY_BUILD_BENCH=OFF >/dev/null
cmake --build "$build" --target parleyd >/dev/null

bench_workdir

parley_start_redis "$tmp/redis"
parley_start_postgres "$tmp/pg"

bench_start_nginx "$tmp/nginx"
nginx_port=$NGINX_PORT
bench_start_parleyd "$build/src/app/parleyd" "$tmp/parleyd.log"
node_port=$NODE_PORT

rate() { wrk -t2 -c"$conns" -d"$duration" "$1" | tee "$tmp/last.txt" | awk '/Requests\/sec/ {print $2}'; cat "$tmp/last.txt" >>"$tmp/wrk.txt"; }
# parleyd's user+system CPU in clock ticks: the machine is shared, so CPU per request
# says more than requests/s, which follows whatever else runs beside the bench.
cpu_ticks() { awk '{print $14 + $15}' "/proc/$1/stat"; }
echo "machine: $(nproc) cores, $(awk '/MemTotal/ {printf "%.0f GiB", $2/1048576}' /proc/meminfo), $(. /etc/os-release; echo "$PRETTY_NAME")"
echo "load: wrk -t2 -c$conns -d$duration, GET /healthz, keep-alive"
nginx_rps=$(rate "http://127.0.0.1:$nginx_port/healthz")
cpu0=$(cpu_ticks "$NODE_PID")
parley_rps=$(rate "http://127.0.0.1:$node_port/healthz")
cpu1=$(cpu_ticks "$NODE_PID")
parley_reqs=$(awk '/requests in/ {print $1}' "$tmp/last.txt")
echo "nginx   $(printf '%10.0f' "$nginx_rps") req/s"
echo "parleyd $(printf '%10.0f' "$parley_rps") req/s"
echo "parleyd $(python3 -c "print(f'{($cpu1-$cpu0)/$(getconf CLK_TCK)*1e6/$parley_reqs:10.1f}')") us CPU per request (user+system, whole process)"
echo "ratio   $(python3 -c "print(f'{$parley_rps/$nginx_rps:.2f}')") (parleyd / nginx; goal >= 0.70)"
