#!/usr/bin/env bash
# bench/webhooks.sh: Twilio SMS webhooks into parleyd beside nginx answering the same
# requests with the same empty TwiML, in one run (issue 13), then the outbox: replies
# delivered per second, and how long the outbox takes to drain after a provider outage.
#
#   bench/webhooks.sh [duration_s=10] [connections=64] [outage_s=30] [users=2000]
#
# Installs what is missing, builds Release (build/release: parleyd), starts a private
# Redis and Postgres, nginx (one worker per core) serving both the reference route and
# the fake Twilio Messages API (201 with a message sid), and parleyd pointed at it.
# Requests are signed beforehand (HMAC-SHA1 of the URL and parameters, as Twilio
# signs), each with its own MessageSid, spread over `users` phone numbers: every
# request is a real turn (no replay), whose replies go through the outbox to nginx.
#   1. nginx: wrk -t2 -c<connections> -d<duration>s, the same requests, `return 200 <Response/>`
#   2. parleyd: the same, signatures checked, each message committed with its replies
#   3. deliveries: replies delivered by the outbox drain while 2 ran and after it, per second
#   4. outage: nginx's Twilio route answers 503 for <outage_s> s while messages keep
#      coming at a tenth of the peak; then the time until the outbox is empty again
# PARLEY_BENCH_BUILD (default build/release) sets the build folder.
set -euo pipefail
top=$(cd "$(dirname "$0")/.." && pwd)
cd "$top"
. scripts/lib/deps.sh
. scripts/lib/servers.sh
. bench/lib.sh
duration=${1:-10}
conns=${2:-64}
outage=${3:-30}
users=${4:-2000}
build=${PARLEY_BENCH_BUILD:-build/release}
admin_token=bench-admin-$$
account=AC0123456789abcdef0123456789abcdef
auth_token=bench-auth-token

parley_install_deps
for p in wrk nginx; do
  command -v $p >/dev/null || { DEBIAN_FRONTEND=noninteractive apt-get install -y -q $p >/dev/null; }
done
bench_release_build "$build" parleyd
bench_workdir

parley_start_redis "$tmp/redis"
parley_start_postgres "$tmp/pg"

# nginx: the reference route, and Twilio's Messages API (201), or 503 while
# $tmp/nginx/down exists (the outage).
nginx_port=$(bench_free_port)
mkdir -p "$tmp/nginx"
cat > "$tmp/nginx/nginx.conf" <<CONF
worker_processes $(nproc);
pid $tmp/nginx/nginx.pid;
error_log $tmp/nginx/error.log warn;
daemon off;
events { worker_connections 4096; }
http {
  access_log off;
  keepalive_requests 100000000;
  keepalive_timeout 60s;
  client_body_temp_path $tmp/nginx;
  proxy_temp_path $tmp/nginx;
  fastcgi_temp_path $tmp/nginx;
  uwsgi_temp_path $tmp/nginx;
  scgi_temp_path $tmp/nginx;
  server {
    listen 127.0.0.1:$nginx_port;
    location = /healthz { return 200 'ok'; }
    location /channels/ {
      default_type text/xml;
      return 200 '<?xml version="1.0" encoding="UTF-8"?><Response/>';
    }
    location /2010-04-01/ {
      if (-f $tmp/nginx/down) { return 503 '{"code":20503,"message":"down"}'; }
      default_type application/json;
      return 201 '{"sid":"SMbench","status":"queued"}';
    }
  }
}
CONF
nginx -c "$tmp/nginx/nginx.conf" &
NGINX_PID=$!
for _ in $(seq 1 100); do curl -fs "http://127.0.0.1:$nginx_port/healthz" >/dev/null && break; sleep 0.05; done

export PARLEY_SECRETS_KEY=${PARLEY_SECRETS_KEY:-$(openssl rand -hex 32)}
PARLEY_ADMIN_TOKEN=$admin_token \
  PARLEY_CHANNELS_TWILIO_API_BASE=http://127.0.0.1:$nginx_port \
  PARLEY_ACTIONS_EGRESS_ALLOW=127.0.0.1/32 PARLEY_CHANNELS_RETRY_MAX_MS=1000 \
  bench_start_parleyd "$build/src/app/parleyd" "$tmp/parleyd.log"
node=http://127.0.0.1:$NODE_PORT
for _ in $(seq 1 200); do curl -fs "$node/readyz" >/dev/null && break; sleep 0.1; done
bench_setup_tenant "$node" "$admin_token" >/dev/null
# The tenant's Twilio credentials, as tenant secrets (admin API).
for kv in "twilio.account_sid=$account" "twilio.auth_token=$auth_token"; do
  curl -fs -o /dev/null -X PUT -H "Authorization: Bearer $admin_token" -H 'Content-Type: application/json' \
    -d "{\"value\":\"${kv#*=}\"}" "$node/admin/v1/tenants/bench/secrets/${kv%%=*}"
done
path=/channels/twilio/bench/bench

# sign N FILE SALT: N signed requests, one per line: signature TAB form body.
sign() {
  python3 - "$1" "$2" "$3" "$node$path" "$auth_token" "$account" "$users" <<'PY'
import base64, hashlib, hmac, sys, urllib.parse
n, out, salt, url, token, account, users = sys.argv[1:8]
with open(out, "w") as f:
    for i in range(int(n)):
        sid = "SM%s%08d" % (salt, i)
        p = {"MessageSid": sid, "AccountSid": account, "From": "+1555%07d" % (i % int(users)),
             "To": "+15005550006", "Body": "when are you open" if i % 2 else "hello",
             "NumMedia": "0", "SmsStatus": "received"}
        data = url + "".join(k + p[k] for k in sorted(p))
        sig = base64.b64encode(hmac.new(token.encode(), data.encode(), hashlib.sha1).digest()).decode()
        f.write(sig + "\t" + urllib.parse.urlencode(p) + "\n")
PY
}
cat > "$tmp/wrk.lua" <<'LUA'
-- Each wrk thread sends its own share of the signed requests, each once while they last.
local threads, reqs, i = {}, {}, 0
function setup(thread)
  thread:set("id", #threads)
  table.insert(threads, thread)
end
function init(args)
  local file, path, n = args[1], args[2], tonumber(args[3])
  local k = 0
  for line in io.lines(file) do
    if k % n == id then
      local sig, body = line:match("([^\t]*)\t(.*)")
      reqs[#reqs + 1] = wrk.format("POST", path, {["Content-Type"] = "application/x-www-form-urlencoded",
                                                  ["X-Twilio-Signature"] = sig}, body)
    end
    k = k + 1
  end
end
function request()
  i = i % #reqs + 1
  return reqs[i]
end
LUA
# Enough for the peak run without wrapping (a wrapped request would be a cheap replay).
sign 400000 "$tmp/peak.req" a
metric() { curl -fs "$node/metrics" | awk -v n="$1" 'index($0, n) == 1 {s += $NF} END {printf "%d", s}'; }

echo "machine: $(nproc) cores, $(awk '/MemTotal/ {printf "%.0f GiB", $2/1048576}' /proc/meminfo), $(. /etc/os-release; echo "$PRETTY_NAME"); load average before: $(cut -d' ' -f1-3 /proc/loadavg)"
echo
echo "== nginx, same requests, static TwiML: wrk -t2 -c$conns -d${duration}s"
wrk -t2 -c"$conns" -d"${duration}s" --latency -s "$tmp/wrk.lua" "http://127.0.0.1:$nginx_port$path" \
  -- "$tmp/peak.req" "$path" 2 | grep -E '^\s+(50|90|99)%|Requests/sec'
echo
delivered0=$(metric 'parley_outbox_deliveries_total{channel="sms",outcome="delivered"}')
t0=$(date +%s.%N)
echo "== parleyd, signed Twilio webhooks, each a committed turn: wrk -t2 -c$conns -d${duration}s"
wrk -t2 -c"$conns" -d"${duration}s" --latency -s "$tmp/wrk.lua" "$node$path" \
  -- "$tmp/peak.req" "$path" 2 > "$tmp/wrk_node.txt"
grep -E '^\s+(50|90|99)%|Requests/sec|Non-2xx' "$tmp/wrk_node.txt" || true
peak=$(awk '/Requests\/sec/ {printf "%d", $2}' "$tmp/wrk_node.txt")
echo
echo "== outbox: replies delivered to the fake Twilio"
for _ in $(seq 1 600); do
  [ "$(metric parley_outbox_waiting_entries)" = 0 ] && break
  sleep 0.1
done
t1=$(date +%s.%N)
delivered1=$(metric 'parley_outbox_deliveries_total{channel="sms",outcome="delivered"}')
python3 -c "d = $delivered1 - $delivered0; s = $t1 - $t0; print(f'{d} replies delivered in {s:.1f} s from the start of the run: {d / s:.0f}/s')"
echo
echo "== outage: Twilio answers 503 for ${outage}s while messages arrive at $((peak / 10))/s"
sign $((peak / 10 * (outage + 5) + 1000)) "$tmp/outage.req" b
touch "$tmp/nginx/down"
cat > "$tmp/rate.lua" <<'LUA'
-- One request per connection every `gap` ms: conns * 1000 / gap requests per second.
local threads, reqs, i, gap = {}, {}, 0, 1000
function setup(thread) thread:set("id", #threads); table.insert(threads, thread) end
function init(args)
  local n = tonumber(args[3]); gap = tonumber(args[4])
  local k = 0
  for line in io.lines(args[1]) do
    if k % n == id then
      local sig, body = line:match("([^\t]*)\t(.*)")
      reqs[#reqs + 1] = wrk.format("POST", args[2], {["Content-Type"] = "application/x-www-form-urlencoded",
                                                     ["X-Twilio-Signature"] = sig}, body)
    end
    k = k + 1
  end
end
function delay() return gap end
function request() i = i % #reqs + 1; return reqs[i] end
LUA
c=$(( peak / 10 / 20 )); [ "$c" -lt 2 ] && c=2
wrk -t2 -c"$c" -d"${outage}s" -s "$tmp/rate.lua" "$node$path" -- "$tmp/outage.req" "$path" 2 50 \
  | grep -E 'Requests/sec|requests in' || true
waiting=$(metric parley_outbox_waiting_entries)
rm "$tmp/nginx/down"
t2=$(date +%s.%N)
for _ in $(seq 1 1200); do
  [ "$(metric parley_outbox_waiting_entries)" = 0 ] && break
  sleep 0.1
done
t3=$(date +%s.%N)
python3 -c "print(f'{$waiting} entries waiting when Twilio came back; outbox empty {($t3 - $t2):.1f} s later')"
echo "dead letters: $(metric parley_outbox_dead_letters_total)"
