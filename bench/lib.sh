# shellcheck shell=bash
# Helpers shared by the bench scripts (sourced): free ports, nginx's static-response
# ceiling, and parleyd on a port it picks. Both servers are started in the
# background; the caller stops them by the PIDs set here.

# bench_workdir: makes a temp folder for the run ($tmp) and stops, at exit, whatever
# the bench_start_* functions and scripts/lib/servers.sh started.
bench_workdir() {
  tmp=$(mktemp -d /tmp/parley-bench-XXXXXX)
  chmod 755 "$tmp"
  NGINX_PID=
  NODE_PID=
  trap bench_cleanup EXIT
}
bench_cleanup() {
  [ -n "$NODE_PID" ] && kill "$NODE_PID" 2>/dev/null && wait "$NODE_PID" 2>/dev/null
  [ -n "$NGINX_PID" ] && kill "$NGINX_PID" 2>/dev/null
  parley_stop_redis
  parley_stop_postgres
  [ -n "${PARLEY_BENCH_KEEP:-}" ] && echo "kept $tmp" >&2 || rm -rf "$tmp"
}

# bench_free_port: prints a free TCP port on 127.0.0.1.
bench_free_port() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'; }

# bench_install PROGRAM...: installs the Debian packages of that name that are missing.
bench_install() {
  local p
  for p in "$@"; do
    command -v "$p" >/dev/null || { DEBIAN_FRONTEND=noninteractive apt-get install -y -q "$p" >/dev/null; }
  done
}

# bench_start_nginx DIR [LOCATIONS]: nginx (one worker per core, access log off,
# unlimited keep-alive requests) answering GET /healthz with parleyd's body, and the
# nginx `location` blocks LOCATIONS, on a free port. Sets NGINX_PORT and NGINX_PID;
# returns once it answers.
bench_start_nginx() {
  local dir=$1 locations=${2:-}
  NGINX_PORT=$(bench_free_port)
  mkdir -p "$dir"
  cat > "$dir/nginx.conf" <<CONF
worker_processes $(nproc);
pid $dir/nginx.pid;
error_log $dir/error.log warn;
daemon off;
events { worker_connections 4096; }
http {
  access_log off;
  keepalive_requests 100000000;
  keepalive_timeout 60s;
  client_body_temp_path $dir;
  proxy_temp_path $dir;
  fastcgi_temp_path $dir;
  uwsgi_temp_path $dir;
  scgi_temp_path $dir;
  server {
    listen 127.0.0.1:$NGINX_PORT;
    location = /healthz { default_type application/json; return 200 '{"status":"alive"}'; }
$locations
  }
}
CONF
  nginx -c "$dir/nginx.conf" &
  NGINX_PID=$!
  local _
  for _ in $(seq 1 100); do curl -fs "http://127.0.0.1:$NGINX_PORT/healthz" >/dev/null && return 0; sleep 0.05; done
  echo "nginx did not start, see $dir/error.log" >&2
  return 1
}

# bench_start_parleyd BINARY LOG: parleyd with config/local.yaml on a port it picks
# (PORT=0), the environment passed through. Sets NODE_PORT and NODE_PID; returns
# once it logged the port.
bench_start_parleyd() {
  local bin=$1 log=$2 _
  : >"$log"  # exists before the first read below, whoever wins the race with the child
  PORT=0 "$bin" --config config/local.yaml >"$log" 2>&1 &
  NODE_PID=$!
  NODE_PORT=
  for _ in $(seq 1 200); do
    NODE_PORT=$(sed -n 's/.*"http_listening".*"port":"\([0-9]*\)".*/\1/p' "$log")
    [ -n "$NODE_PORT" ] && return 0
    sleep 0.05
  done
  echo "parleyd did not start:" >&2
  cat "$log" >&2
  return 1
}

# bench_release_build BUILD TARGET...: configures BUILD as Release (tests off, bench on)
# with the repository's ccache and builds the targets.
bench_release_build() {
  local build=$1
  shift
  export CCACHE_DIR=${CCACHE_DIR:-$top/.cache/ccache}
  cmake -S . -B "$build" -G Ninja -DCMAKE_BUILD_TYPE=Release -DPARLEY_BUILD_TESTS=OFF -DPARLEY_BUILD_BENCH=ON >/dev/null
  cmake --build "$build" --target "$@" >/dev/null
}

# bench_setup_tenant URL TOKEN [REGION]: through the admin API of the node at URL (admin
# token TOKEN), the tenant "bench" (home region REGION, default the node's), an API key
# (printed) and bench/bots/bench.yaml as its active bot "bench".
bench_setup_tenant() {
  local node=$1 token=$2 body='{"id":"bench","name":"Bench"}'
  [ -n "${3:-}" ] && body="{\"id\":\"bench\",\"name\":\"Bench\",\"region\":\"$3\"}"
  curl -fs -o /dev/null -H "Authorization: Bearer $token" -H 'Content-Type: application/json' \
    -d "$body" "$node/admin/v1/tenants"
  curl -fs -o /dev/null -H "Authorization: Bearer $token" -H 'Content-Type: application/yaml' \
    --data-binary @bench/bots/bench.yaml "$node/admin/v1/tenants/bench/bots/bench/versions?activate=true"
  curl -fs -H "Authorization: Bearer $token" -H 'Content-Type: application/json' \
    -d '{"name":"bench"}' "$node/admin/v1/tenants/bench/api-keys" |
    python3 -c "import json,sys; print(json.load(sys.stdin)['key'])"
}
