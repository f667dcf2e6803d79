// Microsoft's Web Chat (botframework-webchat's UMD bundle, dist/webchat.js, npm) in a
// headless Chromium driven by playwright-core, against Parley's Direct Line domain:
// a token from POST /chat/{tenant}/{bot}/token, the welcome and its suggested actions,
// a click on one, a typed message and the bot's answer.
// Usage: node webchat_bundle_client.js <base url> <tenant> <bot> <screenshot.png>;
// exits 0 when every check passed, 1 (with the reason on stderr) otherwise.
// Run by webchat_e2e_test.cpp.

'use strict';
const path = require('path');
const { chromium } = require('playwright-core');

const [base, tenant, bot, shot] = process.argv.slice(2);
if (!shot) {
  console.error('usage: node webchat_bundle_client.js <base> <tenant> <bot> <screenshot.png>');
  process.exit(2);
}
const timeout = 30000;
let fail = async () => '';

function check(cond, what) {
  if (!cond) throw new Error(what);
}

async function main() {
  const res = await fetch(`${base}/chat/${tenant}/${bot}/token`, { method: 'POST' });
  check(res.ok, `the token route answered ${res.status}`);
  const { token } = await res.json();
  // The package's exports hide dist/; its folder is found beside playwright-core's.
  const bundle = path.join(path.dirname(require.resolve('playwright-core/package.json')), '..',
    'botframework-webchat', 'dist', 'webchat.js');

  const browser = await chromium.launch({
    executablePath: process.env.PARLEY_CHROMIUM || '/usr/bin/chromium',
    args: ['--no-sandbox'],
  });
  try {
    const page = await browser.newPage({ viewport: { width: 480, height: 760 } });
    page.setDefaultTimeout(timeout);
    const problems = [];
    page.on('pageerror', (e) => problems.push(`page error: ${e.message}`));
    const consoleLines = [];
    page.on('console', (m) => consoleLines.push(`${m.type()}: ${m.text()}`));
    page.on('requestfailed', (r) => consoleLines.push(`request failed: ${r.url()} ${r.failure().errorText}`));
    await page.setContent('<!doctype html><html><body style="margin:0">' +
      '<div id="webchat" style="height:760px"></div></body></html>');
    await page.addScriptTag({ path: bundle });
    await page.evaluate(({ domain, token }) => {
      window.WebChat.renderWebChat({
        directLine: window.WebChat.createDirectLine({ domain, token, webSocket: true }),
        userID: 'webchat-e2e',
      }, document.getElementById('webchat'));
    }, { domain: `${base}/v3/directline`, token });

    fail = async () => {
      await page.screenshot({ path: shot.replace(/\.png$/, '-failed.png') }).catch(() => {});
      return `; console: ${consoleLines.slice(-20).join(' | ')}; page errors: ${problems.join('; ')}`;
    };
    const said = (text) => page.locator('#webchat').getByText(text, { exact: true }).first();
    await said("Hi! I'm the order assistant.").waitFor();
    await said('How can I help you?').waitFor();
    const action = page.locator('.webchat__suggested-action', { hasText: 'Track an order' });
    await action.waitFor();
    check((await page.locator('.webchat__suggested-action', { hasText: 'Talk to an agent' }).count()) === 1,
      'the second suggested action is shown');
    await action.click();
    await said("What's your order number? It looks like AB-123456.").waitFor();

    const box = page.locator('[data-id="webchat-sendbox-input"]');
    await box.fill('it is ab-123456');
    await box.press('Enter');
    await said('Your order AB123456 has shipped with UPS. Tracking number: 1Z999.').waitFor();
    await said('Anything else?').waitFor();
    await page.screenshot({ path: shot });
    check(problems.length === 0, `the page reported: ${problems.join('; ')}`);
  } catch (e) {
    e.message += await fail();
    throw e;
  } finally {
    await browser.close();
  }
  console.log(`ok: screenshot ${shot}`);
}

main().then(() => process.exit(0), (err) => {
  console.error(`FAILED: ${err.message}`);
  process.exit(1);
});
