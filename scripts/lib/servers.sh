# shellcheck shell=bash
# Private Redis and PostgreSQL servers for scripts/run and scripts/test.
# Both listen on Unix sockets inside their own folder (no TCP port to collide on)
# and are stopped by the PID they wrote.

PG_BIN=$(ls -d /usr/lib/postgresql/*/bin 2>/dev/null | sort -V | tail -n 1)

# parley_start_redis DIR: starts redis-server with its socket and data in DIR.
# Sets REDIS_URL and PARLEY_REDIS_PID.
parley_start_redis() {
  local dir=$1
  mkdir -p "$dir"
  redis-server --port 0 --unixsocket "$dir/redis.sock" --unixsocketperm 700 \
    --dir "$dir" --save "" --appendonly no --daemonize yes \
    --pidfile "$dir/redis.pid" --logfile "$dir/redis.log" >/dev/null
  local i
  for i in $(seq 1 100); do
    redis-cli -s "$dir/redis.sock" ping 2>/dev/null | grep -q PONG && break
    sleep 0.05
  done
  redis-cli -s "$dir/redis.sock" ping >/dev/null || { echo "parley: redis did not start, see $dir/redis.log" >&2; return 1; }
  PARLEY_REDIS_PID=$(cat "$dir/redis.pid")
  export REDIS_URL="unix://$dir/redis.sock"
}

# parley_start_postgres DIR: initialises (once) and starts PostgreSQL with its data
# and socket in DIR, as the postgres user (it refuses to run as root). DIR's
# parents must be traversable by that user. Sets DATABASE_URL and PARLEY_PG_DIR.
parley_start_postgres() {
  local dir=$1
  # From /: the postgres user may not be allowed into the caller's directory.
  local run=(env -C /)
  if [ "$(id -u)" -eq 0 ]; then
    run=(runuser -u postgres -- env -C /)
  fi
  mkdir -p "$dir"
  [ "$(id -u)" -eq 0 ] && chown postgres:postgres "$dir"
  chmod 700 "$dir"
  if [ ! -f "$dir/data/PG_VERSION" ]; then
    "${run[@]}" "$PG_BIN/initdb" -D "$dir/data" -A trust -U postgres --no-sync -E UTF8 >"$dir/initdb.log" 2>&1 \
      || { echo "parley: initdb failed, see $dir/initdb.log" >&2; return 1; }
  fi
  "${run[@]}" "$PG_BIN/pg_ctl" -D "$dir/data" -l "$dir/postgres.log" -w -t 60 \
    -o "-k $dir -c listen_addresses='' -c fsync=off -c synchronous_commit=off -c max_connections=200" \
    start >/dev/null || { echo "parley: postgres did not start, see $dir/postgres.log" >&2; return 1; }
  PARLEY_PG_DIR=$dir
  if ! "${run[@]}" "$PG_BIN/psql" -h "$dir" -U postgres -tAc "select 1 from pg_database where datname='parley'" postgres | grep -q 1; then
    "${run[@]}" "$PG_BIN/createdb" -h "$dir" -U postgres parley
  fi
  export DATABASE_URL="postgresql:///parley?host=$dir&user=postgres"
}

parley_stop_redis() {
  [ -n "${PARLEY_REDIS_PID:-}" ] && kill "$PARLEY_REDIS_PID" 2>/dev/null
  PARLEY_REDIS_PID=
}

parley_stop_postgres() {
  [ -n "${PARLEY_PG_DIR:-}" ] || return 0
  local run=(env -C /)
  [ "$(id -u)" -eq 0 ] && run=(runuser -u postgres -- env -C /)
  "${run[@]}" "$PG_BIN/pg_ctl" -D "$PARLEY_PG_DIR/data" -m fast -w stop >/dev/null 2>&1
  PARLEY_PG_DIR=
}
