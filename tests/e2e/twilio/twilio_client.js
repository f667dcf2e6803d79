// The `twilio` npm package (the SDK Twilio's customers use) against a real parleyd, in
// both of its roles:
// 1. it signs the inbound webhooks (getExpectedTwilioSignature, checked back with
//    validateRequest), as Twilio's servers do, for a multi-turn SMS conversation whose
//    replies Parley sends to the fake Messages API;
// 2. its REST client, through its httpClient option, sends a message to the same fake,
//    which shows that the fake speaks the API the SDK speaks, and that Parley's calls
//    have the SDK's shape (path, authentication, form fields).
// Usage: node twilio_client.js <parleyd url> <path> <auth token> <account sid> <fake base> <our number>
// Exits 0 when every check passed, 1 with the reason on stderr. Run by twilio_e2e_test.cpp.

'use strict';
const twilio = require('twilio');

const [nodeUrl, path, authToken, accountSid, fakeBase, ours] = process.argv.slice(2);
if (!ours) {
  console.error('usage: node twilio_client.js <url> <path> <token> <sid> <fake> <number>');
  process.exit(2);
}
const user = '+15552220001';
let sids = 0;

function check(cond, what) {
  if (!cond) throw new Error(what);
}

async function webhook(body, token = authToken) {
  const url = nodeUrl + path;
  const params = {
    MessageSid: 'SM' + String(++sids).padStart(32, '0'),
    SmsSid: 'SM' + String(sids).padStart(32, '0'),
    AccountSid: accountSid,
    From: user,
    To: ours,
    Body: body,
    NumMedia: '0',
    SmsStatus: 'received',
  };
  const signature = twilio.getExpectedTwilioSignature(token, url, params);
  check(twilio.validateRequest(token, signature, url, params), 'the SDK validates its own signature');
  const r = await fetch(url, {
    method: 'POST',
    headers: { 'Content-Type': 'application/x-www-form-urlencoded', 'X-Twilio-Signature': signature },
    body: new URLSearchParams(params).toString(),
  });
  return { status: r.status, text: await r.text() };
}

async function sent() {
  const r = await fetch(fakeBase + '/sent');
  return r.json();
}

/// Waits until the fake got a message to `to` whose body holds `needle`; all sent then.
async function waitSent(to, needle) {
  const end = Date.now() + 20000;
  for (;;) {
    const all = await sent();
    if (all.some((m) => m.form.To === to && (m.form.Body || '').includes(needle))) return all;
    if (Date.now() > end) throw new Error(`no message to ${to} with "${needle}"; sent: ${JSON.stringify(all)}`);
    await new Promise((r) => setTimeout(r, 50));
  }
}

async function main() {
  // The bot's version reaches the node within its registry's poll.
  let first;
  for (const end = Date.now() + 15000; ; ) {
    first = await webhook('hi');
    if (first.status === 200 || Date.now() > end) break;
    await new Promise((r) => setTimeout(r, 100));
  }
  check(first.status === 200, `first webhook: HTTP ${first.status} ${first.text}`);
  check(first.text.includes('<Response/>'), `an empty TwiML answer, got ${first.text}`);
  await waitSent(user, 'Reply 1 for Track an order or 2 for Talk to an agent.');
  const second = await webhook('1');
  check(second.status === 200, `second webhook: HTTP ${second.status}`);
  const afterTwo = await waitSent(user, "What's your order number?");
  const forged = await webhook('hi', 'not-the-auth-token');
  check(forged.status === 403, `a webhook signed with another token: HTTP ${forged.status}`);

  // The SDK's REST client, its requests sent to the fake instead of api.twilio.com.
  const real = new twilio.RequestClient();
  const httpClient = {
    request: (opts) => real.request({ ...opts, uri: opts.uri.replace('https://api.twilio.com', fakeBase) }),
  };
  const client = twilio(accountSid, authToken, { httpClient });
  const msg = await client.messages.create({ to: user, from: ours, body: 'sent by the SDK' });
  check(/^SM/.test(msg.sid), `the SDK read the fake's answer: sid ${msg.sid}`);
  check(msg.status === 'queued', `status ${msg.status}`);
  const all = await sent();
  const sdk = all.find((m) => m.form.Body === 'sent by the SDK');
  const parley = afterTwo.find((m) => m.form.To === user);
  check(sdk && parley, 'both requests recorded');
  check(sdk.path === parley.path, `same path: SDK ${sdk.path}, Parley ${parley.path}`);
  check(sdk.authorization === parley.authorization, 'same Basic authentication');
  const known = new Set(['To', 'From', 'Body', 'StatusCallback', 'MediaUrl', 'MessagingServiceSid']);
  for (const k of Object.keys(parley.form)) check(known.has(k), `Parley sent the field ${k}, which the API does not take`);
  check(parley.form.From === sdk.form.From && parley.form.To === sdk.form.To, 'the same To and From');
  console.log(`ok: ${all.length} messages sent, the SDK's and Parley's alike`);
}

main().then(() => process.exit(0), (e) => {
  console.error('FAILED: ' + e.message);
  process.exit(1);
});
