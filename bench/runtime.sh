#!/usr/bin/env bash
# bench/runtime.sh: memory per idle live conversation and activation rate from Redis
# snapshots (issue 4), measured in-process by parley_runtime_bench against a private
# Redis. No Postgres, no HTTP.
#
#   bench/runtime.sh [conversations=100000] [in_flight=5000] [parley_runtime_bench options...]
#
# e.g. bench/runtime.sh 100000 5000 --scheduler-policy sharing
#
# Builds parley_runtime_bench in Release (build/release), starts redis-server on a Unix
# socket in a temp dir, runs the bench, stops Redis by its PID.
set -euo pipefail
top=$(cd "$(dirname "$0")/.." && pwd)
cd "$top"
. scripts/lib/deps.sh
. scripts/lib/servers.sh
conversations=${1:-100000}
in_flight=${2:-5000}
shift $(( $# < 2 ? $# : 2 ))
build=${PARLEY_BENCH_BUILD:-build/release}  # Release, tests off

parley_install_deps
export CCACHE_DIR=${CCACHE_DIR:-$top/.cache/ccache}
cmake -S . -B "$build" -G Ninja -DCMAKE_BUILD_TYPE=Release -DPARLEY_BUILD_TESTS=OFF -DPARLEY_BUILD_BENCH=ON >/dev/null
cmake --build "$build" --target parley_runtime_bench >/dev/null

tmp=$(mktemp -d /tmp/parley-bench-XXXXXX)
cleanup() {
  parley_stop_redis
  rm -rf "$tmp"
}
trap cleanup EXIT
parley_start_redis "$tmp/redis"

echo "machine: $(nproc) cores, $(awk '/MemTotal/ {printf "%.0f GiB", $2/1048576}' /proc/meminfo), $(. /etc/os-release; echo "$PRETTY_NAME"); load average before: $(cut -d' ' -f1-3 /proc/loadavg)"
echo "== $build/bench/runtime/parley_runtime_bench --conversations $conversations --in-flight $in_flight $*"
"$build/bench/runtime/parley_runtime_bench" --conversations "$conversations" --in-flight "$in_flight" "$@"
echo "redis: $(redis-cli -s "$tmp/redis/redis.sock" info memory | grep -E '^used_memory_human' | tr -d '\r') for $(redis-cli -s "$tmp/redis/redis.sock" dbsize) keys"
echo "load average after: $(cut -d' ' -f1-3 /proc/loadavg)"
