// Shared helpers for the browser tests: the real server binary, headless Chromium, and a
// 2010-style test page whose my_on* callbacks record every call in `window.calls`.

import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { existsSync, mkdtempSync, rmSync } from 'node:fs';
import { createServer } from 'node:http';
import { connect } from 'node:net';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { chromium } from 'playwright-core';

export const root = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '../..');
// `cargo xtask test` runs these against the release binary, as deployed. (Not a SWITCHBOARD_
// variable: the server reads every one of those as a setting.)
const binary = process.env.E2E_SERVER_BINARY ?? path.join(root, 'target/debug/switchboard');

const CHROMIUM_ARGS = [
  '--headless=new',
  '--no-sandbox',
  '--disable-gpu',
  '--no-first-run',
  '--disable-background-networking',
  '--disable-component-update',
  '--disable-sync',
];

export const CALLBACKS = [
  'my_onstatuschange', 'my_onmakecall', 'my_onincomingcall', 'my_oncallanswered',
  'my_oncallrejected', 'my_onstatusmessage', 'my_masterstatuschanged', 'my_clearincoming',
  'my_clearanswered', 'my_clearrejected', 'my_onpresence', 'my_oncallmissed', 'my_oncallended',
];

/**
 * A page as a 2010 site wrote it: one script tag, inline sv_* calls, global my_on*.
 * `who` ({id, name}) and `watch` (comma list) may also come from the page's query string.
 */
export function sitePage(scriptSrc, { server, who, watch } = {}) {
  const setAddress = server ? `sv_setserveraddress(${JSON.stringify(server)});` : '';
  const given = JSON.stringify({ id: who?.id, name: who?.name, watch });
  return `<!doctype html>
<html><head><meta charset="utf-8"><title>site</title>
<script src="${scriptSrc}"></script>
<script>
  ${setAddress}
  window.calls = [];
  window.stamps = [];
  ${JSON.stringify(CALLBACKS)}.forEach(function (name) {
    window[name] = function () {
      calls.push([name].concat(Array.prototype.slice.call(arguments)));
      stamps.push(Date.now());
    };
  });
  var p = new URLSearchParams(location.search);
  var given = ${given};
  var id = given.id || p.get('id'), name = given.name || p.get('name') || id;
  if (id) sv_setuserinfo(id, name);
  var watch = given.watch || p.get('watch');
  if (watch) sv_watch(watch);
</script></head><body>site page</body></html>`;
}

/** Any free TCP port on 127.0.0.1. */
export async function freePort() {
  const srv = createServer();
  await new Promise((resolve) => srv.listen(0, '127.0.0.1', resolve));
  const { port } = srv.address();
  await new Promise((resolve) => srv.close(resolve));
  return port;
}

/**
 * Starts the switchboard binary; resolves once /healthz answers 200. A restart passes the
 * `port` and `dir` of the earlier run (and `keep` so stopping leaves the database); `env` sets
 * settings that have no flag.
 */
export async function startServer(extraArgs = [], { port: wantPort, dir: wantDir, keep = false, env = {} } = {}) {
  assert.ok(existsSync(binary), `${binary} is missing: run cargo build -p switchboard`);
  const dir = wantDir ?? mkdtempSync(path.join(tmpdir(), 'switchboard-e2e-'));
  const port = wantPort ?? await freePort();
  const args = [
    '--listen', `127.0.0.1:${port}`, '--db', path.join(dir, 'sb.db'),
    '--presence-grace', '2s', '--ring-timeout', '20s', ...extraArgs,
  ];
  // Started in a directory of its own: the pages and the bundle come from inside the binary.
  const proc = spawn(binary, args, {
    cwd: dir,
    env: { ...process.env, RUST_LOG: process.env.RUST_LOG ?? 'warn', ...env },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  let log = '';
  proc.stderr.on('data', (chunk) => { log += chunk; });
  const base = await new Promise((resolve, reject) => {
    let out = '';
    const timer = setTimeout(() => reject(new Error(`server did not start:\n${log}`)), 30_000);
    proc.stdout.on('data', (chunk) => {
      out += chunk;
      const match = out.match(/switchboard listening on (http:\/\/\S+)/);
      if (match) {
        clearTimeout(timer);
        resolve(match[1]);
      }
    });
    proc.on('exit', (code) => reject(new Error(`server exited (${code}):\n${log}`)));
  });
  for (let i = 0; i < 100; i += 1) {
    if (await fetch(`${base}/healthz`).then((r) => r.status === 200, () => false)) break;
    await sleep(100);
  }
  return {
    base,
    port,
    dir,
    log: () => log,
    /** The value of a Prometheus gauge or counter on /metrics. */
    async metric(name) {
      const text = await (await fetch(`${base}/metrics`)).text();
      const line = text.split('\n').find((l) => l.startsWith(`${name} `) || l.startsWith(`${name}{`));
      return line === undefined ? undefined : Number(line.split(' ').pop());
    },
    async stop() {
      proc.kill('SIGTERM');
      await new Promise((resolve) => {
        if (proc.exitCode !== null) resolve();
        proc.on('exit', resolve);
        setTimeout(() => { proc.kill('SIGKILL'); resolve(); }, 5000);
      });
      if (!keep) rmSync(dir, { recursive: true, force: true });
    },
  };
}

/**
 * Starts Debian's redis-server on a free loopback port, with nothing kept on disk; resolves
 * once it answers. A missing redis-server fails the test.
 */
export async function startRedis() {
  const port = await freePort();
  const dir = mkdtempSync(path.join(tmpdir(), 'switchboard-redis-'));
  const proc = spawn('redis-server', [
    '--port', String(port), '--bind', '127.0.0.1', '--save', '', '--appendonly', 'no', '--dir', dir,
  ], { stdio: ['ignore', 'ignore', 'inherit'] });
  const failed = new Promise((_, reject) => proc.on('error', (e) => reject(new Error(`redis-server: ${e.message}`))));
  const ready = (async () => {
    for (let i = 0; i < 200; i += 1) {
      if (await pong(port)) return;
      await sleep(50);
    }
    throw new Error('redis-server did not start');
  })();
  await Promise.race([ready, failed]);
  return {
    url: `redis://127.0.0.1:${port}/`,
    async stop() {
      proc.kill('SIGKILL');
      await new Promise((resolve) => (proc.exitCode !== null ? resolve() : proc.on('exit', resolve)));
      rmSync(dir, { recursive: true, force: true });
    },
  };
}

/** Whether a Redis server answers PING on `port`. */
function pong(port) {
  return new Promise((resolve) => {
    const socket = connect(port, '127.0.0.1');
    socket.on('connect', () => socket.write('PING\r\n'));
    socket.on('data', (data) => { socket.destroy(); resolve(String(data).startsWith('+PONG')); });
    socket.on('error', () => resolve(false));
  });
}

export function launch(extraArgs = []) {
  return chromium.launch({ executablePath: '/usr/bin/chromium', args: [...CHROMIUM_ARGS, ...extraArgs] });
}

export const sleep = (ms) => new Promise((r) => setTimeout(r, ms));

/**
 * Opens a tab of a user (a browser context) showing the site page under the server's own
 * origin. The document comes from a real response of the server (/healthz) and is then
 * replaced: Chromium refuses loopback sockets to documents that did not come from the network.
 */
export async function openTab(context, base, who, { watch } = {}) {
  const page = await context.newPage();
  page.on('pageerror', (e) => console.error('page error:', e.message));
  await showSite(page, base, who, { watch });
  return page;
}

/** (Re)loads the site page in an existing tab, as a reload or a navigation would. */
export async function showSite(page, base, who, { watch } = {}) {
  await page.goto(`${base}/healthz`);
  await page.setContent(sitePage('/client/switchboard.js', { who, watch }));
}

/** Waits until the page's callbacks include one that matches; returns its arguments. */
export async function waitCall(page, name, match = () => true, timeout = 10_000) {
  const deadline = Date.now() + timeout;
  while (Date.now() < deadline) {
    const calls = await page.evaluate(() => window.calls || []);
    const hit = calls.find((c) => c[0] === name && match(c.slice(1)));
    if (hit) return hit.slice(1);
    await sleep(50);
  }
  const calls = await page.evaluate(() => window.calls || []).catch(() => []);
  throw new Error(`no ${name} within ${timeout} ms; saw ${JSON.stringify(calls)}`);
}

/** How many times each callback name was called on a page. */
export async function countCalls(page, name, match = () => true) {
  const calls = await page.evaluate(() => window.calls || []);
  return calls.filter((c) => c[0] === name && match(c.slice(1))).length;
}

/** Waits until a callback was called `n` times (matching `match`). */
export async function waitCount(page, name, n, match = () => true, timeout = 10_000) {
  const deadline = Date.now() + timeout;
  let seen = 0;
  while (Date.now() < deadline) {
    seen = await countCalls(page, name, match);
    if (seen >= n) return seen;
    await sleep(50);
  }
  throw new Error(`${name} called ${seen} times, not ${n}, within ${timeout} ms`);
}

/** Whether this tab leads now (its last my_masterstatuschanged said true). */
export async function leads(page) {
  return page.evaluate(() => {
    const m = calls.filter((c) => c[0] === 'my_masterstatuschanged');
    return m.length > 0 && m[m.length - 1][1] === true;
  });
}

/** A user is online once its page saw my_onstatuschange(true). */
export async function online(page) {
  await waitCall(page, 'my_onstatuschange', ([on]) => on === true);
}

/**
 * A user for the room tests: a new browser context whose page, loaded from `base` (so its socket
 * comes from the server's own origin), holds a raw Switchboard session logged in as `who`.
 */
export async function sessionUser(browser, base, who) {
  const context = await browser.newContext();
  const page = await context.newPage();
  await page.goto(`${base}/healthz`);
  await page.evaluate(({ url, who }) => new Promise((resolve, reject) => {
    const ws = new WebSocket(url);
    window.sb = { ws, frames: [] };
    ws.onmessage = (event) => {
      const frame = JSON.parse(event.data);
      window.sb.frames.push(frame);
      if (frame.ev.type === 'logged_in') resolve();
      if (frame.ev.type === 'error') reject(new Error(JSON.stringify(frame.ev)));
    };
    ws.onerror = () => reject(new Error('session socket failed'));
    ws.onopen = () => {
      ws.send(JSON.stringify({ cmd: { type: 'hello', v: 1 } }));
      ws.send(JSON.stringify({ id: 1, cmd: { type: 'login', auth: { demo: who } } }));
    };
  }), { url: `${base.replace(/^http/, 'ws')}/ws`, who });
  return { context, session: page };
}

/** Sends one protocol frame on a `sessionUser`'s socket. */
export function command(page, frame) {
  return page.evaluate((frame) => window.sb.ws.send(JSON.stringify(frame)), frame);
}

/** The first `call` event in `state` a `sessionUser` received. */
export async function callEvent(page, state) {
  const handle = await page.waitForFunction(
    (state) => window.sb.frames.map((f) => f.ev).find((ev) => ev.type === 'call' && ev.state === state),
    state,
    { timeout: 10_000 },
  );
  return handle.jsonValue();
}
