// Several tabs of one browser share one connection: one leader, every callback in every tab
// once, and a fast hand-over when the leading tab goes away, also during a ringing call.

import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import {
  countCalls, launch, leads, online, openTab, showSite, sleep, startServer, waitCall,
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

/** Polls a metric until it equals `want` (the server updates gauges as sockets come and go). */
async function metricBecomes(name, want, timeout = 5000) {
  const deadline = Date.now() + timeout;
  let value;
  while (Date.now() < deadline) {
    value = await server.metric(name);
    if (value === want) return value;
    await sleep(100);
  }
  return value;
}

async function leaderOf(pages) {
  const flags = await Promise.all(pages.map(leads));
  return flags.flatMap((f, i) => (f ? [i] : []));
}

test('three tabs: one socket, one leader, every tab hears each callback once', async () => {
  const carol = { id: 'carol', name: 'Carol' };
  const context = await browser.newContext();
  const tabs = [];
  for (let i = 0; i < 3; i += 1) tabs.push(await openTab(context, server.base, carol));
  await Promise.all(tabs.map(online));
  const dave = await openTab(await browser.newContext(), server.base, { id: 'dave', name: 'Dave' });
  await online(dave);

  // carol's three tabs and dave's one: two browsers, two sockets.
  assert.equal(await metricBecomes('switchboard_connections', 2), 2);
  assert.deepEqual((await leaderOf(tabs)).length, 1, 'exactly one tab leads');

  await dave.evaluate(() => sv_makecall('carol'));
  for (const tab of tabs) await waitCall(tab, 'my_onincomingcall', ([name]) => name === 'Dave');
  // A follower answers, through the leader.
  const follower = tabs[(await leaderOf(tabs))[0] === 0 ? 1 : 0];
  await follower.evaluate(() => sv_answercall());
  await waitCall(dave, 'my_oncallanswered', ([name]) => name === 'Carol');
  await sleep(500);
  for (const tab of tabs) {
    assert.equal(await countCalls(tab, 'my_onincomingcall'), 1);
    assert.equal(await countCalls(tab, 'my_onstatuschange'), 1);
    const answered = (await tab.evaluate(() => calls))
      .filter((c) => c[0] === 'my_onstatusmessage' && /answered/.test(c[1]));
    assert.equal(answered.length, 1, 'the answer reaches every tab once');
  }
  assert.equal(await countCalls(dave, 'my_oncallanswered'), 1);
  assert.equal(await server.metric('switchboard_connections'), 2);
  assert.equal((await leaderOf(tabs)).length, 1);
  await context.close();
  await dave.context().close();
});

test('the leading tab closes while a call rings: another leads within 1 s and answers', async (t) => {
  const erin = { id: 'erin', name: 'Erin' };
  const context = await browser.newContext();
  const tabs = [];
  for (let i = 0; i < 3; i += 1) tabs.push(await openTab(context, server.base, erin));
  await Promise.all(tabs.map(online));
  const frank = await openTab(await browser.newContext(), server.base, { id: 'frank', name: 'Frank' });
  await online(frank);
  await frank.evaluate(() => sv_makecall('erin'));
  for (const tab of tabs) await waitCall(tab, 'my_onincomingcall');

  const [leaderIndex] = await leaderOf(tabs);
  const closedAt = Date.now();
  await tabs[leaderIndex].close();
  const rest = tabs.filter((_, i) => i !== leaderIndex);
  let took;
  for (let waited = 0; waited < 3000 && took === undefined; waited += 20) {
    for (const tab of rest) {
      const stamp = await tab.evaluate(() => {
        const i = calls.findIndex((c) => c[0] === 'my_masterstatuschanged' && c[1] === true);
        return i < 0 ? null : stamps[i];
      });
      if (stamp !== null) took = stamp - closedAt;
    }
    await sleep(20);
  }
  assert.ok(took !== undefined && took <= 1000, `a new leader after ${took} ms`);
  t.diagnostic(`a new leader after ${took} ms`);
  assert.equal((await leaderOf(rest)).length, 1);

  await rest[0].evaluate(() => sv_answercall());
  await waitCall(frank, 'my_oncallanswered', ([name]) => name === 'Erin');
  // The hand-over did not ring the call again in the remaining tabs.
  for (const tab of rest) assert.equal(await countCalls(tab, 'my_onincomingcall'), 1);
  assert.equal(await metricBecomes('switchboard_connections', 2), 2);
  await context.close();
  await frank.context().close();
});

test('reload while ringing: the caller never sees the callee go offline; answered after', async () => {
  const gina = { id: 'gina', name: 'Gina' };
  const hank = { id: 'hank', name: 'Hank' };
  const ginaTab = await openTab(await browser.newContext(), server.base, gina);
  await online(ginaTab);
  const hankTab = await openTab(await browser.newContext(), server.base, hank, { watch: 'gina' });
  await online(hankTab);
  await waitCall(hankTab, 'my_onpresence', ([id, , on]) => id === 'gina' && on === true);

  await hankTab.evaluate(() => sv_makecall('gina'));
  await waitCall(ginaTab, 'my_onincomingcall');
  await showSite(ginaTab, server.base, gina); // the reload
  const [caller] = await waitCall(ginaTab, 'my_onincomingcall');
  assert.equal(caller, 'Hank');
  await ginaTab.evaluate(() => sv_answercall());
  await waitCall(hankTab, 'my_oncallanswered', ([name]) => name === 'Gina');
  await sleep(2500); // past the presence grace period
  assert.equal(await countCalls(hankTab, 'my_onpresence', ([id, , on]) => id === 'gina' && !on), 0);
  assert.equal(await countCalls(hankTab, 'my_onmakecall', ([ok]) => ok === false), 0);
  await ginaTab.context().close();
  await hankTab.context().close();
});

test('without Web Locks the tabs still share one socket and hand over', async () => {
  const kim = { id: 'kim', name: 'Kim' };
  const context = await browser.newContext();
  // A browser without navigator.locks: the client elects over BroadcastChannel alone.
  await context.addInitScript(() => { delete Navigator.prototype.locks; });
  const tabs = [];
  for (let i = 0; i < 2; i += 1) tabs.push(await openTab(context, server.base, kim));
  await Promise.all(tabs.map(online));
  assert.equal(await tabs[0].evaluate(() => 'locks' in navigator), false);
  await sleep(1500);
  assert.equal((await leaderOf(tabs)).length, 1, 'one leader');
  assert.equal(await metricBecomes('switchboard_connections', 1), 1);

  const leo = await openTab(await browser.newContext(), server.base, { id: 'leo', name: 'Leo' });
  await online(leo);
  await leo.evaluate(() => sv_makecall('kim'));
  for (const tab of tabs) await waitCall(tab, 'my_onincomingcall', ([name]) => name === 'Leo');
  const [leaderIndex] = await leaderOf(tabs);
  await tabs[leaderIndex].close({ runBeforeUnload: true });
  const rest = tabs[1 - leaderIndex];
  // Its latest word must be "leading" (an earlier true may date from the first election).
  for (let i = 0; i < 100 && !(await leads(rest)); i += 1) await sleep(50);
  assert.ok(await leads(rest), 'the remaining tab leads');
  await rest.evaluate(() => sv_answercall());
  await waitCall(leo, 'my_oncallanswered', ([name]) => name === 'Kim');
  assert.equal(await countCalls(rest, 'my_onincomingcall'), 1);
  await context.close();
  await leo.context().close();
});

test('a frozen leader is replaced, and after thawing it follows without repeating events', async (t) => {
  const mia = { id: 'mia', name: 'Mia' };
  const context = await browser.newContext();
  const tabs = [];
  for (let i = 0; i < 2; i += 1) tabs.push(await openTab(context, server.base, mia));
  await Promise.all(tabs.map(online));
  const [leaderIndex] = await leaderOf(tabs);
  const frozen = tabs[leaderIndex];
  const other = tabs[1 - leaderIndex];
  // A frozen tab runs nothing and keeps its lock. Chromium's own freezing (background tabs,
  // back/forward cache) cannot be triggered here: stopping the tab's script in the debugger
  // has the same effect, without the `freeze` event a real freeze sends first.
  const cdp = await context.newCDPSession(frozen);
  await cdp.send('Debugger.enable');
  await cdp.send('Debugger.pause');
  const t0 = Date.now();
  for (let i = 0; i < 160 && !(await leads(other)); i += 1) await sleep(50);
  assert.ok(await leads(other), 'the visible tab took over from the frozen one');
  const took = Date.now() - t0;
  assert.ok(took < 6000, `took ${took} ms`);
  t.diagnostic(`the frozen leader was replaced after ${took} ms`);

  const ned = await openTab(await browser.newContext(), server.base, { id: 'ned', name: 'Ned' });
  await online(ned);
  await ned.evaluate(() => sv_makecall('mia'));
  await waitCall(other, 'my_onincomingcall', ([name]) => name === 'Ned');

  await cdp.send('Debugger.resume');
  // Thawed, the old leader learns its lock was taken, follows, and catches up once.
  await waitCall(frozen, 'my_onincomingcall', ([name]) => name === 'Ned');
  for (let i = 0; i < 40 && (await leads(frozen)); i += 1) await sleep(50);
  assert.deepEqual(await leaderOf(tabs), [1 - leaderIndex]);
  await frozen.evaluate(() => sv_answercall());
  await waitCall(ned, 'my_oncallanswered', ([name]) => name === 'Mia');
  await sleep(300);
  for (const tab of tabs) {
    assert.equal(await countCalls(tab, 'my_onincomingcall'), 1);
    assert.equal(await countCalls(tab, 'my_onstatuschange'), 1);
  }
  assert.equal(await metricBecomes('switchboard_connections', 2), 2);
  await context.close();
  await ned.context().close();
});

test('an answer given while the leader is frozen is carried out by the next leader', async () => {
  const olive = { id: 'olive', name: 'Olive' };
  const context = await browser.newContext();
  const tabs = [];
  for (let i = 0; i < 2; i += 1) tabs.push(await openTab(context, server.base, olive));
  await Promise.all(tabs.map(online));
  const quinn = await openTab(await browser.newContext(), server.base, { id: 'quinn', name: 'Quinn' });
  await online(quinn);
  await quinn.evaluate(() => sv_makecall('olive'));
  for (const tab of tabs) await waitCall(tab, 'my_onincomingcall');

  const [leaderIndex] = await leaderOf(tabs);
  const cdp = await context.newCDPSession(tabs[leaderIndex]);
  await cdp.send('Debugger.enable');
  await cdp.send('Debugger.pause');
  // The follower's click goes to a leader that cannot take it.
  await tabs[1 - leaderIndex].evaluate(() => sv_answercall());
  await waitCall(quinn, 'my_oncallanswered', ([name]) => name === 'Olive', 10_000);
  await cdp.send('Debugger.resume');
  await context.close();
  await quinn.context().close();
});
