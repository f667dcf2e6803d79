#!/usr/bin/env bash
# bench/cluster.sh: the cluster figures of issue 12 on this machine.
#
#   bench/cluster.sh [runs=5] [conversations=30]
#
# Installs what is missing, builds parleyd Release (build/release, or PARLEY_BENCH_BUILD),
# starts a private Redis and Postgres in a temp dir, and runs bench/cluster.py:
#   1. failover after kill -9, `runs` times: a fresh three-node region (Redis flushed),
#      `conversations` sessions of the counter bot (tests/cluster/counter.yaml), the node
#      owning the most killed with kill -9, then each of its conversations sends a turn
#      (to any node, retried elsewhere, as behind a load balancer) until answered. Prints
#      each run's time from the kill to the last answer, then p50 and max over the runs
#      (goal: max under 5 s) and the per-conversation p50 (goal: under 2 s).
#   2. shards moved when a fourth node joins a three-node region, from the shards_owned
#      of GET /admin/v1/cluster before and after the handoff settled (goal: at most
#      1.1 x 1/4 of the shards).
# It is not a load benchmark: a few requests per run, so it does not disturb others much.
set -euo pipefail
runs=${1:-5} conversations=${2:-30}
top=$(cd "$(dirname "$0")/.." && pwd)
build=${PARLEY_BENCH_BUILD:-build/release}
cd "$top"
for lib in scripts/lib/deps.sh scripts/lib/servers.sh bench/lib.sh; do . "$lib"; done

parley_install_deps
export CCACHE_DIR=${CCACHE_DIR:-$top/.cache/ccache}
cmake -S . -B "$build" -G Ninja -DCMAKE_BUILD_TYPE=Release -DPARLEY_BUILD_TESTS=OFF -DPARLEY_BUILD_BENCH=OFF >/dev/null
cmake --build "$build" --target parleyd >/dev/null

bench_workdir
parley_start_redis "$tmp/redis"
parley_start_postgres "$tmp/pg"
export PARLEYD=$top/$build/src/app/parleyd
export PARLEY_ADMIN_TOKEN=bench-admin-$$
export BENCH_TMP=$tmp BENCH_REDIS_SOCK=$tmp/redis/redis.sock
export PARLEY_LOG_LEVEL=${PARLEY_LOG_LEVEL:-info}
echo "bench/cluster.sh: $runs failover runs of $conversations conversations, then a join;" \
  "$(nproc) cores, parleyd $build"
python3 bench/cluster.py "$runs" "$conversations"
