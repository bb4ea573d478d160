// The example site backend (examples/site-backend) with the real server in signed mode: its
// pages log two users in with the tokens it signs, they call, answer and hang up; and the
// backend receives and verifies the server's webhooks for that call.

import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import path from 'node:path';
import { freePort, launch, root, sleep, startServer } from './harness.mjs';

const JWT_SECRET = 'a backend browser-test secret of 32+ bytes';
const WEBHOOK_SECRET = 'a backend browser-test webhook secret, 32+ bytes';

/**
 * Starts examples/site-backend/server.mjs as a site would, configured by its environment;
 * resolves once it listens.
 */
async function startBackend({ port, switchboard }) {
  const proc = spawn('node', [path.join(root, 'examples/site-backend/server.mjs')], {
    env: {
      ...process.env,
      SWITCHBOARD_URL: switchboard,
      SWITCHBOARD_JWT_SECRET: JWT_SECRET,
      SWITCHBOARD_WEBHOOK_SECRET: WEBHOOK_SECRET,
      PORT: String(port),
    },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  let log = '';
  proc.stderr.on('data', (chunk) => { log += chunk; });
  const base = await new Promise((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error(`the example backend did not start:\n${log}`)), 10_000);
    proc.stdout.on('data', (chunk) => {
      log += chunk;
      const match = log.match(/example site listening on (http:\/\/\S+?)\/?$/m);
      if (match) {
        clearTimeout(timer);
        resolve(match[1]);
      }
    });
    proc.on('exit', (code) => reject(new Error(
      `the example backend exited (${code}); its packages: npm ci --prefix examples/site-backend\n${log}`,
    )));
  });
  return {
    base,
    log: () => log,
    async stop() {
      proc.kill('SIGTERM');
      await new Promise((resolve) => (proc.exitCode !== null ? resolve() : proc.on('exit', resolve)));
    },
  };
}

/**
 * The server in signed mode allowing the backend's origin, and the backend; with `webhooks`,
 * the server posts its events to the backend (whose port is chosen first for that).
 */
async function startSite({ webhooks = false } = {}) {
  const port = await freePort();
  const origin = `http://127.0.0.1:${port}`;
  const server = await startServer([
    '--jwt-secret', JWT_SECRET, '--allowed-origins', origin,
    ...(webhooks ? ['--webhook-urls', `${origin}/webhooks`, '--webhook-secret', WEBHOOK_SECRET] : []),
  ]);
  const backend = await startBackend({ port, switchboard: server.base }).catch(async (e) => {
    await server.stop();
    throw e;
  });
  return {
    server,
    backend,
    async stop() {
      await backend.stop();
      await server.stop();
    },
  };
}

let browser;
before(async () => { browser = await launch(); });
after(async () => { await browser?.close(); });

/** A user's own browser, logged in to the site through its login form's URL. */
async function userPage(site, id, name) {
  const context = await browser.newContext();
  const page = await context.newPage();
  page.on('pageerror', (e) => console.error('page error:', e.message));
  await page.goto(`${site.backend.base}/login?${new URLSearchParams({ id, name })}`);
  assert.equal(new URL(page.url()).pathname, '/', 'the login leads to the page');
  await page.waitForFunction(() => document.getElementById('status').textContent === 'online', null, { timeout: 15_000 })
    .catch((e) => { throw new Error(`${id} never came online: ${e.message}\nserver log:\n${site.server.log()}`); });
  return page;
}

/** Through the pages' own buttons: `caller` calls `callee`, who answers; the caller hangs up. */
async function callAnswerHangUp(site, caller, callee) {
  const a = await userPage(site, caller.id, caller.name);
  const b = await userPage(site, callee.id, callee.name);
  await a.fill('#callee', callee.id);
  await a.click('#call button');
  await b.waitForSelector('#incoming', { state: 'visible' });
  assert.equal(await b.textContent('#caller'), caller.name);
  await b.click('#answer');
  await a.waitForSelector('#incall', { state: 'visible' });
  assert.equal(await a.textContent('#peer'), callee.name);
  assert.equal(await b.textContent('#peer'), caller.name);
  const callerLink = await a.getAttribute('#room', 'href');
  const calleeLink = await b.getAttribute('#room', 'href');
  assert.ok(callerLink.startsWith(site.server.base), callerLink);
  assert.notEqual(callerLink, calleeLink, 'each has a personal room link');
  await a.click('#hangup');
  await b.waitForSelector('#incall', { state: 'hidden' });
  await b.waitForFunction((name) => document.getElementById('note').textContent.startsWith(`Call with ${name} ended`), caller.name);
  await a.waitForSelector('#incall', { state: 'hidden' });
  await a.context().close();
  await b.context().close();
}

test('the example backend\'s pages: two users log in with its tokens, call, answer and hang up', async () => {
  const site = await startSite();
  try {
    await callAnswerHangUp(site, { id: 'ann', name: 'Ann Example' }, { id: 'bob', name: 'Bob <Example>' });
  } finally {
    await site.stop();
  }
});

test('webhooks: the example backend receives and verifies call.ringing, call.answered, call.ended for the call', async () => {
  const site = await startSite({ webhooks: true });
  const { server, backend } = site;
  try {
    const caller = { id: 'hook-ann', name: 'Ann Hook' };
    const callee = { id: 'hook-bob', name: 'Bob Hook' };
    await callAnswerHangUp(site, caller, callee);
    const ofTheCall = (events) => events.filter((e) => e.type.startsWith('call.')
      && e.call?.caller?.id === caller.id && e.call?.callee?.id === callee.id);
    let events = [];
    for (let i = 0; i < 100 && !ofTheCall(events).some((e) => e.type === 'call.ended'); i += 1) {
      await sleep(100);
      events = await (await fetch(`${backend.base}/webhooks/received`)).json();
    }
    const calls = ofTheCall(events);
    const context = `received: ${JSON.stringify(events)}\nbackend log:\n${backend.log()}\nserver log:\n${server.log()}`;
    assert.deepEqual(calls.map((e) => e.type), ['call.ringing', 'call.answered', 'call.ended'], context);
    assert.equal(new Set(calls.map((e) => e.call.id)).size, 1, `one call: ${context}`);
    for (const event of calls) {
      assert.equal(event.call.caller.name, caller.name);
      assert.equal(event.call.callee.name, callee.name);
      assert.equal(typeof event.at, 'number');
    }
    const [, answered, ended] = calls;
    assert.ok(answered.call.answered_at, 'the answered event says when');
    assert.ok(ended.call.ended_at, 'the ended event says when');
  } finally {
    await site.stop();
  }
});
