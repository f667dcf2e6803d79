// bench/directline/ws_load.js: many Direct Line 3.0 conversations held open on one
// node over WebSockets, then turns over them at a fixed rate (bench/directline.sh runs
// it; `ws` comes from tests/e2e/node_modules through NODE_PATH).
//
//   node ws_load.js --url http://127.0.0.1:PORT --secret SECRET --conversations N
//                   --rate R --duration S [--pid PID]
//
// Phases, each reported on its own line:
//   1. start N conversations (POST /v3/directline/conversations with the bot's secret;
//      each start runs the bot's welcome turn and commits it);
//   2. open one WebSocket per conversation on its streamUrl and wait until every socket
//      has replayed its log (the welcome messages);
//   3. idle: the node's resident memory with every socket open (--pid: read from
//      /proc/PID/status after each phase, so the difference per conversation is known);
//   4. R turns/s for S seconds (open loop): each turn goes to an idle conversation,
//      POSTed with the conversation's token; it is done when the group with the
//      user's echo (its clientActivityID) and the bot's replies arrives on the socket.
//      Latency is from the turn's intended send time, so a slow node shows up in the
//      percentiles (no coordinated omission).
// The last line is JSON for scripts. Every wait is bounded; exit 1 when a phase
// fails or more than 1% of the turns did.
'use strict';
const http = require('http');
const WebSocket = require('ws');
const fs = require('fs');

function args() {
  const a = { url: '', secret: '', conversations: 1000, rate: 100, duration: 10, pid: 0, parallel: 64 };
  const v = process.argv.slice(2);
  for (let i = 0; i < v.length; i += 2) {
    const k = v[i].replace(/^--/, '');
    if (!(k in a)) throw new Error(`unknown option ${v[i]}`);
    a[k] = typeof a[k] === 'number' ? Number(v[i + 1]) : v[i + 1];
  }
  if (!a.url || !a.secret) throw new Error('--url and --secret are required');
  return a;
}

const o = args();
const base = new URL(o.url);
const agent = new http.Agent({ keepAlive: true, maxSockets: o.parallel });

function rssKiB() {
  if (!o.pid) return 0;
  const m = /VmRSS:\s+(\d+) kB/.exec(fs.readFileSync(`/proc/${o.pid}/status`, 'utf8'));
  return m ? Number(m[1]) : 0;
}

function post(path, auth, body) {
  return new Promise((resolve) => {
    const data = body === undefined ? '' : JSON.stringify(body);
    const req = http.request(
      { host: base.hostname, port: base.port, path, method: 'POST', agent, timeout: 10000,
        headers: { Authorization: `Bearer ${auth}`, 'Content-Type': 'application/json',
                   'Content-Length': Buffer.byteLength(data) } },
      (res) => {
        const chunks = [];
        res.on('data', (c) => chunks.push(c));
        res.on('end', () => resolve({ status: res.statusCode, body: Buffer.concat(chunks).toString() }));
      });
    // Headers and body leave in two writes: without TCP_NODELAY the body waits for the
    // server's delayed ACK (about 40 ms at a low rate).
    req.on('socket', (sock) => sock.setNoDelay(true));
    req.on('timeout', () => req.destroy(new Error('timeout')));
    req.on('error', (e) => resolve({ status: 0, body: String(e) }));
    req.end(data);
  });
}

// Runs `count` tasks, at most `parallel` at once.
async function pool(count, parallel, task) {
  let next = 0;
  const lanes = [];
  for (let l = 0; l < Math.min(parallel, count); ++l) {
    lanes.push((async () => {
      while (next < count) await task(next++);
    })());
  }
  await Promise.all(lanes);
}

function pct(sorted, p) {
  if (!sorted.length) return 0;
  return sorted[Math.min(sorted.length - 1, Math.max(0, Math.ceil((p / 100) * sorted.length) - 1))];
}

function fail(msg) {
  console.error(`ws_load: ${msg}`);
  process.exit(1);
}

async function main() {
  const rss0 = rssKiB();
  const convs = [];
  // 1. Conversations.
  let t = Date.now();
  let startErrors = 0;
  await pool(o.conversations, o.parallel, async (i) => {
    const r = await post('/v3/directline/conversations', o.secret);
    if (r.status !== 201 && r.status !== 200) {
      if (++startErrors <= 3) console.error(`start ${i}: ${r.status} ${r.body.slice(0, 200)}`);
      return;
    }
    const c = JSON.parse(r.body);
    convs.push({ id: c.conversationId, token: c.token, stream: c.streamUrl, ws: null, pending: null, n: 0 });
  });
  if (startErrors) fail(`${startErrors} conversation starts failed`);
  const startS = (Date.now() - t) / 1000;
  const rss1 = rssKiB();
  console.log(`started   ${convs.length} conversations in ${startS.toFixed(1)} s (${(convs.length / startS).toFixed(0)}/s), node RSS ${(rss1 / 1024).toFixed(0)} MiB (+${((rss1 - rss0) / convs.length).toFixed(1)} KiB each)`);

  // 2. Sockets.
  t = Date.now();
  let openErrors = 0;
  const latencies = [];
  const postLatencies = [];  // intended send -> the POST's answer (the node's acknowledgement)
  let measuring = false;
  let measureFrom = Infinity;
  let turnErrors = 0;
  const idle = [];  // conversations with no turn in flight (phase 4)
  await pool(convs.length, o.parallel * 4, (i) => new Promise((resolve) => {
    const c = convs[i];
    const ws = new WebSocket(c.stream);
    c.ws = ws;
    const timer = setTimeout(() => { ++openErrors; ws.terminate(); resolve(); }, 15000);
    let replayed = false;
    ws.on('message', (data) => {
      const text = data.toString();
      if (!text) return;  // heartbeat
      const m = JSON.parse(text);
      if (!replayed) {
        // The first frame is the replay of the log from the watermark (the welcome).
        replayed = true;
        clearTimeout(timer);
        resolve();
        return;
      }
      const p = c.pending;
      if (!p) return;
      for (const a of m.activities || []) {
        if (a.channelData && a.channelData.clientActivityID === p.client) {
          c.pending = null;
          if (measuring && p.intended >= measureFrom) latencies.push(performance.now() - p.intended);
          idle.push(c);
          return;
        }
      }
    });
    ws.on('error', () => { clearTimeout(timer); if (!replayed) { ++openErrors; resolve(); } });
    ws.on('close', () => { if (c.pending) { c.pending = null; ++turnErrors; } });
  }));
  if (openErrors) fail(`${openErrors} sockets did not open and replay`);
  const openS = (Date.now() - t) / 1000;
  // 3. Idle: let the node settle, then read its memory.
  await new Promise((r) => setTimeout(r, 3000));
  const rss2 = rssKiB();
  console.log(`sockets   ${convs.length} open in ${openS.toFixed(1)} s, node RSS ${(rss2 / 1024).toFixed(0)} MiB (+${((rss2 - rss1) / convs.length).toFixed(1)} KiB each for the socket, ${((rss2 - rss0) / convs.length).toFixed(1)} KiB each in all)`);

  // 4. Turns at a fixed rate.
  idle.push(...convs);
  let notSent = 0;
  let sent = 0;
  const warmupMs = 2000;
  const t0 = performance.now();
  measureFrom = t0 + warmupMs;
  const stopAt = measureFrom + o.duration * 1000;
  measuring = true;
  let due = 0;  // turns due so far
  const queue = [];  // intended times of due turns waiting for an idle conversation
  const texts = ['when are you open', 'how much does it cost', 'hello', 'a blue widget'];
  function send(c, intended) {
    const client = `bench-${c.id}-${++c.n}`;
    c.pending = { client, intended };
    ++sent;
    post(`/v3/directline/conversations/${encodeURIComponent(c.id)}/activities`, c.token, {
      type: 'message', from: { id: 'user' }, text: texts[c.n % texts.length],
      channelData: { clientActivityID: client },
    }).then((r) => {
      if (measuring && intended >= measureFrom && (r.status === 200 || r.status === 201))
        postLatencies.push(performance.now() - intended);
      if (r.status !== 200 && r.status !== 201 && c.pending && c.pending.client === client) {
        c.pending = null;
        if (intended >= measureFrom) ++turnErrors;
        idle.push(c);
      }
    });
  }
  await new Promise((resolve) => {
    const tick = setInterval(() => {
      const now = performance.now();
      if (now < stopAt) {
        // Every turn whose time has come (turn d is due at t0 + d / rate).
        for (let at = t0 + (due / o.rate) * 1000; at <= now && at < stopAt; at = t0 + (++due / o.rate) * 1000)
          queue.push(at);
      }
      while (queue.length && idle.length) {
        const k = Math.floor(Math.random() * idle.length);
        const c = idle[k];
        idle[k] = idle[idle.length - 1];
        idle.pop();
        send(c, queue.shift());
      }
      if (now >= stopAt) {
        const busy = convs.filter((c) => c.pending);
        if (!busy.length || now > stopAt + 10000) {
          for (const c of busy) if (c.pending.intended >= measureFrom) ++turnErrors;
          notSent = queue.filter((x) => x >= measureFrom).length;
          clearInterval(tick);
          resolve();
        }
      }
    }, 1);
  });
  const rss3 = rssKiB();
  latencies.sort((a, b) => a - b);
  postLatencies.sort((a, b) => a - b);
  const measured = latencies.length + turnErrors + notSent;
  const r = {
    conversations: convs.length, rate: o.rate, duration_s: o.duration, sent, turns: latencies.length,
    turns_per_s: latencies.length / o.duration, p50_ms: pct(latencies, 50), p90_ms: pct(latencies, 90),
    p99_ms: pct(latencies, 99), p999_ms: pct(latencies, 99.9), max_ms: latencies[latencies.length - 1] || 0,
    post_p50_ms: pct(postLatencies, 50), post_p99_ms: pct(postLatencies, 99),
    errors: turnErrors + notSent, rss_start_kib: rss0, rss_conversations_kib: rss1, rss_sockets_kib: rss2,
    rss_after_turns_kib: rss3,
    kib_per_conversation: (rss2 - rss0) / convs.length, kib_per_socket: (rss2 - rss1) / convs.length,
  };
  console.log(`turns     ${r.turns} over the sockets in ${o.duration} s (${r.turns_per_s.toFixed(0)}/s, asked ${o.rate}/s), ${r.errors} failed`);
  console.log(`latency   p50 ${r.p50_ms.toFixed(2)} ms  p90 ${r.p90_ms.toFixed(2)} ms  p99 ${r.p99_ms.toFixed(2)} ms  p99.9 ${r.p999_ms.toFixed(2)} ms  max ${r.max_ms.toFixed(2)} ms (post -> replies on the socket, from the intended send time)`);
  console.log(`posts     answered p50 ${r.post_p50_ms.toFixed(2)} ms  p99 ${r.post_p99_ms.toFixed(2)} ms (the POST's own answer)`);
  console.log(`memory    node RSS ${(rss3 / 1024).toFixed(0)} MiB after the turns`);
  console.log(JSON.stringify(r));
  for (const c of convs) c.ws.terminate();
  agent.destroy();
  process.exit(measured && r.errors / measured > 0.01 ? 1 : 0);
}

main().catch((e) => fail(e.stack || String(e)));
