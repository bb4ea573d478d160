// Two users call each other through the 2010 page contract: ringing, answer, reject, cancel,
// and a callee who is offline.

import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import {
  countCalls, launch, online, openTab, sleep, startServer, waitCall, waitCount,
} from './harness.mjs';

let server;
let browser;
before(async () => {
  server = await startServer();
  browser = await launch();
});
after(async () => {
  await browser?.close();
  await server?.stop();
});

async function user(who) {
  const context = await browser.newContext();
  const page = await openTab(context, server.base, who);
  await online(page);
  return { context, page };
}

test('A calls B, B answers: both get their own room link, and both links open', async () => {
  const a = await user({ id: 'ann1', name: 'Ann' });
  const b = await user({ id: 'bob1', name: 'Bob' });
  await a.page.evaluate(() => sv_makecall('bob1'));
  await waitCall(a.page, 'my_onmakecall', ([ok]) => ok === true);
  const [callerName, calleeLink] = await waitCall(b.page, 'my_onincomingcall');
  assert.equal(callerName, 'Ann');
  assert.match(calleeLink, /^https?:\/\//);
  await b.page.evaluate(() => sv_answercall());
  const [calleeName, callerLink] = await waitCall(a.page, 'my_oncallanswered');
  assert.equal(calleeName, 'Bob');
  assert.match(callerLink, /^https?:\/\//);
  assert.notEqual(callerLink, calleeLink, 'links are personal');
  for (const link of [callerLink, calleeLink]) {
    const res = await fetch(link, { redirect: 'manual' });
    assert.ok(res.status >= 200 && res.status < 400, `${link} answered ${res.status}`);
  }
  await a.context.close();
  await b.context.close();
});

test('B rejects: A hears my_oncallrejected with B\'s name', async () => {
  const a = await user({ id: 'ann2', name: 'Ann' });
  const b = await user({ id: 'bob2', name: 'Bob' });
  await a.page.evaluate(() => sv_makecall('bob2'));
  await waitCall(b.page, 'my_onincomingcall');
  await b.page.evaluate(() => sv_rejectcall());
  const [name] = await waitCall(a.page, 'my_oncallrejected');
  assert.equal(name, 'Bob');
  await a.context.close();
  await b.context.close();
});

test('A cancels: B\'s incoming call is cleared', async () => {
  const a = await user({ id: 'ann3', name: 'Ann' });
  const b = await user({ id: 'bob3', name: 'Bob' });
  await a.page.evaluate(() => sv_makecall('bob3'));
  await waitCall(b.page, 'my_onincomingcall');
  // A's page must know its call rings before it can withdraw it (its event may come later
  // than B's on a busy machine).
  await waitCall(a.page, 'my_onmakecall', ([ok]) => ok === true);
  await a.page.evaluate(() => sv_clearoutgoingcall());
  await waitCall(b.page, 'my_clearincoming');
  await sleep(300);
  assert.equal(await countCalls(b.page, 'my_onincomingcall'), 1);
  await a.context.close();
  await b.context.close();
});

test('B offline: A gets my_onmakecall(false) and a reason, never true', async () => {
  const a = await user({ id: 'ann4', name: 'Ann' });
  // bob4 was online once, then left.
  const b = await user({ id: 'bob4', name: 'Bob' });
  await b.page.evaluate(() => sv_logoff());
  await waitCall(b.page, 'my_onstatuschange', ([on]) => on === false);
  await a.page.evaluate(() => sv_makecall('bob4'));
  await waitCall(a.page, 'my_onmakecall', ([ok]) => ok === false);
  const messages = (await a.page.evaluate(() => calls))
    .filter((c) => c[0] === 'my_onstatusmessage').map((c) => c[1]);
  assert.ok(messages.some((m) => /offline/i.test(m)), JSON.stringify(messages));
  assert.equal(await countCalls(a.page, 'my_onmakecall', ([ok]) => ok === true), 0);
  // Someone who never was here at all.
  await a.page.evaluate(() => sv_makecall('nobody-at-all'));
  await waitCount(a.page, 'my_onmakecall', 2, ([ok]) => ok === false);
  assert.equal(await countCalls(a.page, 'my_onmakecall', ([ok]) => ok === true), 0);
  await a.context.close();
  await b.context.close();
});

test('the ES module: connect, call, and events with named details', async () => {
  const b = await user({ id: 'bob5', name: 'Bob' });
  const context = await browser.newContext();
  const page = await context.newPage();
  await page.goto(`${server.base}/healthz`);
  await page.setContent(`<script type="module">
    import { connect } from '/client/switchboard.mjs';
    window.events = [];
    const sb = await connect({ user: 'ann5', name: 'Ann' });
    for (const type of ['statuschange', 'makecall', 'callanswered']) {
      sb.addEventListener(type, (e) => events.push([type, e.detail]));
    }
    window.sb = sb;
  </script>`);
  await page.waitForFunction(() => window.events?.some(([t, d]) => t === 'statuschange' && d.online));
  await page.evaluate(() => sb.call('bob5'));
  await waitCall(b.page, 'my_onincomingcall', ([name]) => name === 'Ann');
  await b.page.evaluate(() => sv_answercall());
  const detail = await page.waitForFunction(
    () => window.events.find(([t]) => t === 'callanswered')?.[1],
  ).then((h) => h.jsonValue());
  assert.equal(detail.name, 'Bob');
  assert.match(detail.link, /^https?:\/\//);
  assert.equal(await page.evaluate(() => sb.leader), true);
  await context.close();
  await b.context.close();
});
