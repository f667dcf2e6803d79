// A multi-turn conversation with the order-status bot through Microsoft's
// botframework-directlinejs over the WebSocket stream, as a web page would hold it.
// Usage: node directlinejs_client.js <domain> <secret>; exits 0 when every check
// passed, 1 (with the reason on stderr) otherwise. Run by directline_e2e_test.cpp.

'use strict';
global.XMLHttpRequest = require('xhr2');
global.WebSocket = require('ws');
const { DirectLine, ConnectionStatus } = require('botframework-directlinejs');

const [domain, secret] = process.argv.slice(2);
if (!domain || !secret) {
  console.error('usage: node directlinejs_client.js <domain> <secret>');
  process.exit(2);
}

const timeoutMs = 20000;
const seen = [];
let waiters = [];

function check(cond, what) {
  if (!cond) throw new Error(what);
}

/// Resolves with the first activity (seen before or after the call) that `pred` accepts.
function waitFor(what, pred) {
  const hit = seen.find(pred);
  if (hit) return Promise.resolve(hit);
  return new Promise((resolve, reject) => {
    const timer = setTimeout(() => {
      reject(new Error(`timed out waiting for ${what}; saw ${JSON.stringify(seen.map(brief))}`));
    }, timeoutMs);
    waiters.push({ pred, resolve: (a) => { clearTimeout(timer); resolve(a); } });
  });
}

function brief(a) {
  return { id: a.id, type: a.type, from: a.from && a.from.role, text: a.text };
}

function fromBot(text) {
  return (a) => a.type === 'message' && a.from && a.from.role === 'bot' && a.text === text;
}

function actions(a) {
  return ((a.suggestedActions && a.suggestedActions.actions) || []).map((x) => `${x.type}:${x.title}=${x.value}`);
}

function post(dl, activity) {
  return new Promise((resolve, reject) => {
    dl.postActivity(activity).subscribe(
      (id) => (id === 'retry' ? reject(new Error('postActivity answered retry')) : resolve(id)),
      (err) => reject(new Error(`postActivity failed: ${err && err.message}`)));
  });
}

async function say(dl, text, clientActivityID) {
  const id = await post(dl, {
    type: 'message',
    from: { id: 'e2e-user', name: 'E2E' },
    text,
    channelData: { clientActivityID, extra: { kept: [1, 'two'] } },
  });
  // The echo: the server's id, channelData unchanged (Web Chat waits for it).
  const echo = await waitFor(`the echo of ${clientActivityID}`,
    (a) => a.channelData && a.channelData.clientActivityID === clientActivityID);
  check(echo.id === id, `echo id ${echo.id} != posted id ${id}`);
  check(echo.text === text, `echo text ${echo.text}`);
  check(echo.from.id === 'e2e-user', `echo from ${JSON.stringify(echo.from)}`);
  check(JSON.stringify(echo.channelData.extra) === '{"kept":[1,"two"]}',
    `channelData changed: ${JSON.stringify(echo.channelData)}`);
  return id;
}

async function main() {
  const dl = new DirectLine({ secret, domain, webSocket: true, timeout: 10000 });
  const statuses = [];
  dl.connectionStatus$.subscribe((s) => statuses.push(s));
  dl.activity$.subscribe((a) => {
    seen.push(a);
    const keep = [];
    for (const w of waiters) (w.pred(a) ? w.resolve(a) : keep.push(w));
    waiters = keep;
  }, (err) => console.error('activity$ error', err));

  const menu = await waitFor('the welcome menu', fromBot('How can I help you?'));
  await waitFor('the welcome', fromBot("Hi! I'm the order assistant."));
  check(actions(menu).join('|') === 'imBack:Track an order=Track an order|imBack:Talk to an agent=Talk to an agent',
    `welcome suggestedActions ${JSON.stringify(actions(menu))}`);
  check(statuses.includes(ConnectionStatus.Online), `never online: ${statuses}`);

  await say(dl, 'Track an order', 'e2e-1');
  await waitFor('the order number question', fromBot("What's your order number? It looks like AB-123456."));

  await say(dl, 'it is ab-123456', 'e2e-2');
  await waitFor('the order status',
    fromBot('Your order AB123456 has shipped with UPS. Tracking number: 1Z999.'));
  const more = await waitFor('the second menu', fromBot('Anything else?'));
  check(actions(more).join('|') === 'imBack:Track another order=Track another order|imBack:No, that\'s all=No, that\'s all',
    `second suggestedActions ${JSON.stringify(actions(more))}`);

  await say(dl, "No, that's all", 'e2e-3');
  await waitFor('the goodbye', fromBot('Thanks for chatting. Goodbye!'));
  await waitFor('endOfConversation', (a) => a.type === 'endOfConversation');

  // Every activity arrived once, in the log's order.
  const ids = seen.filter((a) => a.type !== 'typing').map((a) => a.id);
  check(new Set(ids).size === ids.length, `an activity arrived twice: ${ids}`);
  const sorted = [...ids].sort();
  check(JSON.stringify(sorted) === JSON.stringify(ids), `out of order: ${ids}`);
  dl.end();
  console.log(`ok: ${seen.length} activities, conversation ${dl.conversationId}`);
}

main().then(() => process.exit(0), (err) => {
  console.error(`FAILED: ${err.message}`);
  process.exit(1);
});
