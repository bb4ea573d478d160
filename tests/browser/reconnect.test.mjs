// The server restarts under a logged-in browser: the client reconnects by itself with
// backoff, logs in again, and the page never hears it went offline.

import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import { rmSync } from 'node:fs';
import { countCalls, launch, online, openTab, startServer, waitCall } from './harness.mjs';

let browser;
before(async () => { browser = await launch(); });
after(async () => { await browser?.close(); });

test('a server restart: reconnect, log in again, calls work, no offline flap', async () => {
  let server = await startServer([], { keep: true });
  const { port, dir } = server;
  try {
    const olga = await openTab(await browser.newContext(), server.base, { id: 'olga', name: 'Olga' });
    const pete = await openTab(await browser.newContext(), server.base, { id: 'pete', name: 'Pete' });
    await online(olga);
    await online(pete);

    await server.stop();
    await waitCall(olga, 'my_onstatusmessage', ([m]) => /lost/.test(m));
    server = await startServer([], { port, dir, keep: true });
    for (const page of [olga, pete]) {
      await waitCall(page, 'my_onstatusmessage', ([m]) => /reconnected/.test(m), 15_000);
    }
    // The new server knows nobody until the clients log in again, which they do themselves.
    let rang = false;
    for (let i = 0; i < 50 && !rang; i += 1) {
      await olga.evaluate(() => sv_makecall('pete'));
      rang = await waitCall(olga, 'my_onmakecall', ([ok]) => ok === true, 300).then(() => true, () => false);
    }
    assert.ok(rang, 'a call rings after the restart');
    await waitCall(pete, 'my_onincomingcall', ([name]) => name === 'Olga');
    for (const page of [olga, pete]) {
      assert.equal(await countCalls(page, 'my_onstatuschange', ([on]) => on === false), 0);
    }
    await olga.context().close();
    await pete.context().close();
  } finally {
    await server.stop();
    rmSync(dir, { recursive: true, force: true });
  }
});
