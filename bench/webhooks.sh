#!/usr/bin/env bash
# bench/webhooks.sh: Twilio SMS webhooks into parleyd beside nginx answering the same
# requests with the same empty TwiML, in one run (issue 13), then the outbox: replies
# delivered per second, and how long the outbox takes to drain after a provider outage.
#
#   bench/webhooks.sh [duration_s=10] [connections=64] [outage_s=30] [users=2000] [rate=5000]
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
#   4. parleyd at a fixed rate (open loop, `rate`/s, default 5000): parley_loadgen
#      --rate, latency from each request's intended send time (no coordinated omission)
#   5. outage: nginx's Twilio route answers 503 for <outage_s> s while messages keep
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
rate=${5:-5000}
build=${PARLEY_BENCH_BUILD:-build/release}
admin_token=bench-admin-$$
account=AC0123456789abcdef0123456789abcdef
auth_token=bench-auth-token

parley_install_deps
bench_install wrk nginx
bench_release_build "$build" parleyd parley_loadgen
bench_workdir

parley_start_redis "$tmp/redis"
parley_start_postgres "$tmp/pg"

# nginx: the reference route, and Twilio's Messages API (201), or 503 while
# $tmp/nginx/down exists (the outage).
mkdir -p "$tmp/nginx"
bench_start_nginx "$tmp/nginx" "
    location /channels/ {
      default_type text/xml;
      return 200 '<?xml version=\"1.0\" encoding=\"UTF-8\"?><Response/>';
    }
    location /2010-04-01/ {
      if (-f $tmp/nginx/down) { return 503 '{\"code\":20503,\"message\":\"down\"}'; }
      default_type application/json;
      return 201 '{\"sid\":\"SMbench\",\"status\":\"queued\"}';
    }"
nginx_port=$NGINX_PORT

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

# sign N FILE SALT: N signed requests, one per line, as parley_loadgen --requests reads
# them: target TAB Content-Type TAB X-Twilio-Signature TAB form body.
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
        f.write("\t".join([urllib.parse.urlsplit(url).path,
                           "Content-Type: application/x-www-form-urlencoded",
                           "X-Twilio-Signature: " + sig, urllib.parse.urlencode(p)]) + "\n")
PY
}
cat > "$tmp/wrk.lua" <<'LUA'
-- Each wrk thread sends its own share of the signed requests, each once while they last.
-- Arguments: the file of signed requests (target TAB header lines... TAB body), the
-- path, the number of threads, and optionally a pause in ms before each connection's
-- next request (a steady rate).
local threads, reqs, i, gap = {}, {}, 0, 0
function setup(thread)
  thread:set("id", #threads)
  table.insert(threads, thread)
end
function init(args)
  local n = tonumber(args[3])
  gap = tonumber(args[4] or "0")
  local k = 0
  for line in io.lines(args[1]) do
    if k % n == id then
      local fields = {}
      for field in (line .. "\t"):gmatch("([^\t]*)\t") do fields[#fields + 1] = field end
      local headers = {}
      for j = 2, #fields - 1 do
        local name, value = fields[j]:match("^([^:]+):%s*(.*)$")
        headers[name] = value
      end
      reqs[#reqs + 1] = wrk.format("POST", args[2], headers, fields[#fields])
    end
    k = k + 1
  end
end
function delay() return gap end
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
echo "== parleyd, open loop: $rate signed webhooks/s for ${duration}s, latency from the intended send time"
sign $((rate * (duration + 2) + 1000)) "$tmp/rate.req" r
for _ in $(seq 1 600); do
  [ "$(metric parley_outbox_waiting_entries)" = 0 ] && break
  sleep 0.1
done
build_abs=$(cd "$build" && pwd)
# What does not depend on the machine: parleyd's CPU, context switches and syscalls per
# webhook over the run (warm-up included, as is every webhook sent in it).
cpu0=$(awk '{print $14 + $15}' "/proc/$NODE_PID/stat")
ctx0=$(cat /proc/"$NODE_PID"/task/*/status 2>/dev/null | awk '/ctxt_switches/ {s += $2} END {print s}')
perf_out=
if command -v perf >/dev/null; then
  perf_out=$tmp/perf-rate.txt
  perf stat -e raw_syscalls:sys_enter -p "$NODE_PID" -o "$perf_out" -- sleep "$((duration + 2))" 2>/dev/null &
  perf_pid=$!
fi
"$build_abs/bench/loadgen/parley_loadgen" --url "$node" --requests "$tmp/rate.req" --rate "$rate" \
  --connections "$conns" --threads 1 --duration "$duration" --warmup 2 > "$tmp/rate.txt" || true
grep -E '^(turns|latency|errors|loadgen)' "$tmp/rate.txt" || true
[ -n "$perf_out" ] && { wait "$perf_pid" || true; }
cpu1=$(awk '{print $14 + $15}' "/proc/$NODE_PID/stat")
ctx1=$(cat /proc/"$NODE_PID"/task/*/status 2>/dev/null | awk '/ctxt_switches/ {s += $2} END {print s}')
sys=$([ -n "$perf_out" ] && awk '/raw_syscalls:sys_enter/ {gsub(",", "", $1); print $1}' "$perf_out")
python3 - "$rate" "$duration" "$cpu0" "$cpu1" "$(getconf CLK_TCK)" "$ctx0" "$ctx1" "${sys:-0}" <<'PY'
import sys
rate, d, c0, c1, hz, x0, x1, sysc = map(float, sys.argv[1:])
n = rate * (d + 2)
print(f"parleyd   {(c1 - c0) / hz / n * 1e6:.0f} us CPU, {(x1 - x0) / n:.2f} context switches"
      + (f", {sysc / n:.1f} syscalls" if sysc else "") + " per webhook (all threads, the warm-up included)")
PY
echo
echo "== outage: Twilio answers 503 for ${outage}s while messages arrive at $((peak / 10))/s"
sign $((peak / 10 * (outage + 5) + 1000)) "$tmp/outage.req" b
touch "$tmp/nginx/down"
c=$(( peak / 10 / 20 )); [ "$c" -lt 2 ] && c=2
wrk -t2 -c"$c" -d"${outage}s" -s "$tmp/wrk.lua" "$node$path" -- "$tmp/outage.req" "$path" 2 50 \
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
