// The 2010 rule, when the server is set to it: a second browser logs the first one out
// ("logged in from another place"), and the first does not log itself back in.

import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import { countCalls, launch, online, openTab, sleep, startServer, waitCall } from './harness.mjs';

let server;
let browser;
before(async () => {
  server = await startServer(['--single-session', 'true']);
  browser = await launch();
});
after(async () => {
  await browser?.close();
  await server?.stop();
});

test('logged in from another place: offline, told why, and no automatic re-login', async () => {
  const rosa = { id: 'rosa', name: 'Rosa' };
  const first = await openTab(await browser.newContext(), server.base, rosa);
  await online(first);
  const second = await openTab(await browser.newContext(), server.base, rosa);
  await online(second);
  await waitCall(first, 'my_onstatuschange', ([on]) => on === false);
  await waitCall(first, 'my_onstatusmessage', ([m]) => m === 'logged in from another place');
  await sleep(2000);
  assert.equal(await countCalls(first, 'my_onstatuschange', ([on]) => on === true), 1);
  assert.equal(await countCalls(second, 'my_onstatuschange', ([on]) => on === false), 0);
  // The first browser comes back only when its page asks.
  await first.evaluate(() => sv_login('rosa', 'Rosa'));
  await waitCall(second, 'my_onstatuschange', ([on]) => on === false);
  await first.context().close();
  await second.context().close();
});
