// Who a browser speaks for: two users on one shared browser each have their own connection and
// hear only their own calls; tokens renew through the page's provider; a refused login does
// not stop the next one.

import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import { createHmac } from 'node:crypto';
import { rmSync } from 'node:fs';
import {
  countCalls, launch, online, openTab, sleep, startServer, waitCall,
} from './harness.mjs';

const SECRET = 'a browser-test secret of at least thirty-two bytes';

/** An HS256 JWT as a site's backend signs it; `life` in seconds (negative: already expired). */
function sign({ sub, name, life = 3600 }, secret = SECRET) {
  const part = (o) => Buffer.from(JSON.stringify(o)).toString('base64url');
  const body = `${part({ alg: 'HS256', typ: 'JWT' })}.${part({ sub, name, exp: Math.floor(Date.now() / 1000) + life })}`;
  return `${body}.${createHmac('sha256', secret).update(body).digest('base64url')}`;
}

let browser;
before(async () => { browser = await launch(); });
after(async () => { await browser?.close(); });

test('a shared browser: two users in two tabs are both online and each hears only their own calls', async () => {
  const server = await startServer();
  try {
    const shared = await browser.newContext();
    const ann = await openTab(shared, server.base, { id: 'ann', name: 'Ann' });
    await online(ann);
    const ben = await openTab(shared, server.base, { id: 'ben', name: 'Ben' });
    await online(ben);
    const carol = await openTab(await browser.newContext(), server.base, { id: 'carol', name: 'Carol' }, { watch: 'ann,ben' });
    await online(carol);
    // Both are really online, as the server tells a third party.
    for (const id of ['ann', 'ben']) {
      await waitCall(carol, 'my_onpresence', ([who, , on]) => who === id && on === true);
    }
    assert.equal(await ann.evaluate(() => sv_ismaster()), true, "Ann's tab holds her connection");
    assert.equal(await ben.evaluate(() => sv_ismaster()), true, "Ben's tab holds his connection");

    // A call to Ann rings in Ann's tab only, with her link.
    await carol.evaluate(() => sv_makecall('ann'));
    await waitCall(carol, 'my_onmakecall', ([ok]) => ok === true);
    const [, annLink] = await waitCall(ann, 'my_onincomingcall', ([name]) => name === 'Carol');
    await ann.evaluate(() => sv_answercall());
    await waitCall(carol, 'my_oncallanswered', ([name]) => name === 'Ann');
    await carol.evaluate(() => sv_hangup());
    await waitCall(ann, 'my_oncallended');
    // A call to Ben rings in Ben's tab only.
    await carol.evaluate(() => sv_makecall('ben'));
    const [, benLink] = await waitCall(ben, 'my_onincomingcall', ([name]) => name === 'Carol');
    assert.notEqual(annLink, benLink);
    await ben.evaluate(() => sv_rejectcall());
    await waitCall(carol, 'my_oncallrejected', ([name]) => name === 'Ben');
    await sleep(300);
    assert.equal(await countCalls(ann, 'my_onincomingcall'), 1, 'Ann never got Ben\'s call');
    assert.equal(await countCalls(ben, 'my_onincomingcall'), 1, 'Ben never got Ann\'s call');
    const annSaw = JSON.stringify(await ann.evaluate(() => calls));
    assert.ok(!annSaw.includes(benLink), 'Ben\'s link never reached Ann\'s page');

    // Each calls as themselves.
    await ann.evaluate(() => sv_makecall('carol'));
    await waitCall(carol, 'my_onincomingcall', ([name]) => name === 'Ann');
    await carol.evaluate(() => sv_rejectcall());
    await waitCall(ann, 'my_oncallrejected', ([name]) => name === 'Carol');
    await ben.evaluate(() => sv_makecall('carol'));
    await waitCall(carol, 'my_onincomingcall', ([name]) => name === 'Ben');
    for (const page of [ann, ben]) {
      assert.equal(await countCalls(page, 'my_onstatuschange', ([on]) => on === false), 0);
    }
    await shared.close();
    await carol.context().close();
  } finally {
    await server.stop();
  }
});

test('a token that expires renews through the provider: no offline flap, and calls ring after', async () => {
  let server = await startServer(['--jwt-secret', SECRET], { keep: true });
  const { port, dir } = server;
  try {
    const rex = await openSigned(server.base, { sub: 'rex', name: 'Rex' }, { watch: 'uma' });
    await online(rex);
    // Uma's token lives 3 s; her page's provider hands out more of the same.
    const context = await browser.newContext();
    const uma = await context.newPage();
    let provided = 0;
    await uma.exposeFunction('freshToken', () => {
      provided += 1;
      return sign({ sub: 'uma', name: 'Uma', life: 3 });
    });
    await showSigned(uma, server.base, sign({ sub: 'uma', name: 'Uma', life: 3 }),
      'sv_settokenprovider(() => window.freshToken());');
    await online(uma);
    await waitCall(rex, 'my_onpresence', ([id, , on]) => id === 'uma' && on === true);
    const offline = () => countCalls(rex, 'my_onpresence', ([id, , on]) => id === 'uma' && !on);
    const offlineBefore = await offline();
    // Past the first token's expiry and the server's 5 s leeway, several renewals later.
    await sleep(9000);
    assert.ok(provided >= 2, `the provider was asked ${provided} times`);
    assert.equal(await offline(), offlineBefore, 'renewing did not flap presence');
    // A restart forgets every session: only a renewed token logs Uma in again.
    await server.stop();
    server = await startServer(['--jwt-secret', SECRET], { port, dir, keep: true });
    let rang = false;
    for (let i = 0; i < 50 && !rang; i += 1) {
      await rex.evaluate(() => sv_makecall('uma'));
      rang = await waitCall(rex, 'my_onmakecall', ([ok]) => ok === true, 300).then(() => true, () => false);
    }
    assert.ok(rang, `a call to Uma rings after her first token expired; Uma saw ${JSON.stringify(await uma.evaluate(() => calls))}`);
    await waitCall(uma, 'my_onincomingcall', ([name]) => name === 'Rex');
    assert.equal(await countCalls(uma, 'my_onstatuschange', ([on]) => on === false), 0);
    await context.close();
    await rex.context().close();
  } finally {
    await server.stop();
    rmSync(dir, { recursive: true, force: true });
  }
});

test('a refused login (expired token, too many sessions) does not stop a later one', async () => {
  const server = await startServer(['--jwt-secret', SECRET], {
    env: { SWITCHBOARD_SESSIONS_PER_USER: '1' },
  });
  try {
    const sam = await openSigned(server.base, { sub: 'sam', name: 'Sam', life: -60 });
    await waitCall(sam, 'my_onstatusmessage', ([m]) => /expired/.test(m));
    await sam.evaluate((t) => sv_login('sam', 'Sam', t), sign({ sub: 'sam', name: 'Sam' }));
    await online(sam);

    // Sam's second browser is one session too many, until the first one leaves.
    const second = await openSigned(server.base, { sub: 'sam', name: 'Sam' });
    await waitCall(second, 'my_onstatusmessage', ([m]) => /too many/.test(m));
    await sam.evaluate(() => sv_logoff());
    await waitCall(sam, 'my_onstatuschange', ([on]) => on === false);
    await second.evaluate((t) => sv_login('sam', 'Sam', t), sign({ sub: 'sam', name: 'Sam' }));
    await online(second);
    await sam.context().close();
    await second.context().close();
  } finally {
    await server.stop();
  }
});

/** A page of a site whose backend signs tokens: `sv_setuserinfo` with one. */
async function showSigned(page, base, token, extra = '') {
  await page.goto(`${base}/healthz`);
  await page.setContent(`<script src="/client/switchboard.js"></script><script>
    window.calls = [];
    ['my_onstatuschange', 'my_onmakecall', 'my_onincomingcall', 'my_onstatusmessage',
     'my_onpresence', 'my_masterstatuschanged'].forEach(function (n) {
      window[n] = function () { calls.push([n].concat([].slice.call(arguments))); };
    });
    ${extra}
    sv_setuserinfo('', '', ${JSON.stringify(token)});
  </script>`);
}

async function openSigned(base, claims, { watch } = {}) {
  const page = await (await browser.newContext()).newPage();
  page.on('pageerror', (e) => console.error('page error:', e.message));
  await showSigned(page, base, sign(claims), watch ? `sv_watch(${JSON.stringify(watch)});` : '');
  return page;
}
