// Parley's web chat page (GET /chat/{tenant}/{bot}) in a headless Chromium driven by
// playwright-core, against a real parleyd: the welcome and its suggested actions, a
// click on one, a dropped socket reconnected from the watermark, a typed message, the
// bot's answers, the end of the conversation, and the error state of a bot without
// web chat. Every request stays on the page's origin and the secret never reaches it.
// Usage: node chat_page_client.js <base url> <tenant> <bot> <secret> <screenshot.png>;
// exits 0 when every check passed, 1 (with the reason on stderr) otherwise.
// Run by webchat_e2e_test.cpp.

'use strict';
const { chromium } = require('playwright-core');

const [base, tenant, bot, secret, shot] = process.argv.slice(2);
if (!shot) {
  console.error('usage: node chat_page_client.js <base> <tenant> <bot> <secret> <screenshot.png>');
  process.exit(2);
}
const timeout = 20000;

function check(cond, what) {
  if (!cond) throw new Error(what);
}

async function main() {
  const browser = await chromium.launch({
    executablePath: process.env.PARLEY_CHROMIUM || '/usr/bin/chromium',
    args: ['--no-sandbox'],
  });
  try {
    const page = await browser.newPage({ viewport: { width: 480, height: 760 } });
    page.setDefaultTimeout(timeout);
    const problems = [];
    const urls = [];
    page.on('pageerror', (e) => problems.push(`page error: ${e.message}`));
    page.on('console', (m) => { if (m.type() === 'error') problems.push(`console: ${m.text()}`); });
    page.on('request', (r) => urls.push(r.url()));
    page.on('response', (r) => { if (r.status() >= 400) problems.push(`${r.status()} from ${r.url()}`); });
    page.on('websocket', (ws) => urls.push(ws.url()));

    const res = await page.goto(`${base}/chat/${tenant}/${bot}`);
    check(res.status() === 200, `the page answered ${res.status()}`);
    const csp = res.headers()['content-security-policy'] || '';
    check(csp.includes("connect-src 'self' ws: wss:") && csp.includes("default-src 'none'"),
      `Content-Security-Policy: ${csp}`);
    check((await page.locator('#bot-name').textContent()) === bot, 'the header names the bot');

    const botSays = (text) => page.locator('.msg.bot .bubble', { hasText: text });
    const userSaid = (text) => page.locator('.msg.user:not(.pending):not(.failed) .bubble', { hasText: text });

    await botSays("Hi! I'm the order assistant.").waitFor();
    await botSays('How can I help you?').waitFor();
    await page.waitForFunction(() => document.getElementById('status').textContent === 'Online');
    const buttons = await page.locator('#suggestions button').allTextContents();
    check(buttons.join('|') === 'Track an order|Talk to an agent', `suggested actions: ${buttons}`);
    check(!(await page.locator('#input').isDisabled()), 'the input is enabled once online');

    await page.getByRole('button', { name: 'Track an order' }).click();
    await userSaid('Track an order').waitFor();  // the echo marked the bubble sent
    await botSays("What's your order number? It looks like AB-123456.").waitFor();
    check((await page.locator('#suggestions button').count()) === 0, 'the old suggestions are gone');

    // The socket drops: the page reconnects from its watermark and shows nothing twice.
    const watermark = await page.evaluate(() => window.parleyChat.watermark);
    check(watermark !== '', 'the page kept a watermark');
    await page.evaluate(() => window.parleyChat.dropSocket());
    await page.waitForFunction(() => document.getElementById('status').textContent === 'Reconnecting…');
    await page.waitForFunction(() => document.getElementById('status').textContent === 'Online');
    check(urls.some((u) => u.includes('/stream?') && u.includes(`watermark=${watermark}`)),
      `no stream reopened from watermark ${watermark}: ${urls.filter((u) => u.includes('/stream'))}`);

    await page.fill('#input', 'it is ab-123456');
    await page.press('#input', 'Enter');
    await userSaid('it is ab-123456').waitFor();
    await botSays('Your order AB123456 has shipped with UPS. Tracking number: 1Z999.').waitFor();
    await botSays('Anything else?').waitFor();
    const more = await page.locator('#suggestions button').allTextContents();
    check(more.join('|') === "Track another order|No, that's all", `second suggested actions: ${more}`);
    for (const text of ['How can I help you?', "What's your order number? It looks like AB-123456."]) {
      const n = await botSays(text).count();
      check(n === 1, `"${text}" shown ${n} times`);
    }
    await page.screenshot({ path: shot });

    await page.getByRole('button', { name: "No, that's all" }).click();
    await botSays('Thanks for chatting. Goodbye!').waitFor();
    await page.locator('.event', { hasText: 'The conversation has ended.' }).waitFor();
    check(await page.locator('#input').isDisabled(), 'the input is disabled after the end');
    check(await page.locator('#banner-action', { hasText: 'Start a new conversation' }).isVisible(),
      'a new conversation is offered');

    const html = await page.content();
    check(!html.includes(secret), 'the page holds the secret');
    const origin = new URL(base);
    const foreign = urls.filter((u) => new URL(u).host !== origin.host);
    check(foreign.length === 0, `requests to other origins: ${foreign}`);
    check(problems.length === 0, `the page reported: ${problems.join('; ')}`);

    // A bot without a Direct Line secret: a clear error, and no conversation.
    const off = await browser.newPage();
    off.setDefaultTimeout(timeout);
    await off.goto(`${base}/chat/${tenant}/no-such-bot`);
    const banner = off.locator('#banner-text');
    await banner.waitFor();
    const text = await banner.textContent();
    check(text.includes('web chat is not enabled for bot no-such-bot: set the tenant secret directline.no-such-bot'),
      `the error banner says: ${text}`);
    check(await off.locator('#input').isDisabled(), 'the input stays disabled without web chat');
    check((await off.locator('#status').textContent()) === 'Offline', 'the status says offline');
  } finally {
    await browser.close();
  }
  console.log(`ok: screenshot ${shot}`);
}

main().then(() => process.exit(0), (err) => {
  console.error(`FAILED: ${err.message}`);
  process.exit(1);
});
