// The built-in room through a real TURN relay (coturn with a shared secret): media that may
// only use the relay connects and says so, survives a relay restart, is given up with a retry
// button when the relay stays down, and a relay that refuses or is not there is named on the
// page within a bounded time.
//
// Needs `cargo build -p switchboard` and coturn's `turnserver` (apt-get install coturn); run
// with `node --test turn.test.mjs` in this folder.

import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import { spawn, spawnSync } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import dgram from 'node:dgram';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';

import { callEvent, command, freePort, launch, sessionUser, sleep, startServer } from './harness.mjs';

/** Fake camera and microphone, and WebRTC over 127.0.0.1 (this machine has no other interface). */
const MEDIA_ARGS = [
  '--use-fake-ui-for-media-stream',
  '--use-fake-device-for-media-stream',
  '--allow-loopback-in-peer-connection',
];

/** How long a page may take to say the relay failed: its own limit (20 s from both pages being
 * present), plus starting the camera and the signalling. */
const FAILURE_SAID_WITHIN_MS = 30_000;
/** How long a page may take to give a lost connection up: its own limit (30 s) and slack. */
const RECOVERY_SAID_WITHIN_MS = 45_000;

let browser;
let turnPort;
let turnSecret;
let turn;

/** Whether a STUN binding request to the port is answered: coturn is up and listening. */
function stunAnswers(port) {
  return new Promise((resolve) => {
    const socket = dgram.createSocket('udp4');
    const request = Buffer.alloc(20);
    request.writeUInt16BE(0x0001, 0); // Binding Request, no attributes
    request.writeUInt32BE(0x2112a442, 4); // magic cookie
    randomBytes(12).copy(request, 8);
    const done = (answered) => {
      clearTimeout(timer);
      socket.close();
      resolve(answered);
    };
    const timer = setTimeout(() => done(false), 300);
    socket.on('message', () => done(true));
    socket.on('error', () => done(false));
    socket.send(request, port, '127.0.0.1');
  });
}

/** Starts coturn on 127.0.0.1:`port` with `secret`; resolves once it answers STUN. */
async function startTurn(port, secret) {
  const dir = mkdtempSync(path.join(tmpdir(), 'switchboard-turn-'));
  const proc = spawn('turnserver', [
    '-n', '--listening-ip=127.0.0.1', `--listening-port=${port}`, '--relay-ip=127.0.0.1',
    '--min-port=49160', '--max-port=49300', '--use-auth-secret', `--static-auth-secret=${secret}`,
    '--realm=switchboard.test', '--no-tls', '--no-dtls', '--allow-loopback-peers', '--no-cli',
    `--pidfile=${path.join(dir, 'turnserver.pid')}`, `--userdb=${path.join(dir, 'turndb')}`,
    '--log-file=stdout',
  ], { stdio: ['ignore', 'pipe', 'pipe'] });
  let log = '';
  proc.stdout.on('data', (chunk) => { log += chunk; });
  proc.stderr.on('data', (chunk) => { log += chunk; });
  const exited = new Promise((resolve) => proc.on('exit', resolve));
  for (let i = 0; !(await stunAnswers(port)); i += 1) {
    if (proc.exitCode !== null || i > 50) throw new Error(`coturn did not start:\n${log}`);
  }
  return {
    log: () => log,
    async stop() {
      proc.kill('SIGKILL');
      await exited;
      rmSync(dir, { recursive: true, force: true });
    },
  };
}

/** Server flags for a built-in room whose media may only go through the relay. */
function relayOnly(port, secret) {
  return [
    '--turn-urls', `turn:127.0.0.1:${port}?transport=udp,turn:127.0.0.1:${port}?transport=tcp`,
    '--turn-secret', secret,
    '--ice-transport-policy', 'relay',
  ];
}

/** A user: a browser context with a logged-in Switchboard session on `base`. */
const user = (base, who) => sessionUser(browser, base, who);


/** Sets up an answered call between two new users and opens both room pages. */
async function call(base, caller, callee) {
  const a = await user(base, caller);
  const b = await user(base, callee);
  await command(a.session, { id: 2, cmd: { type: 'call', to: callee.id } });
  const ringing = await callEvent(b.session, 'ringing');
  await command(b.session, { id: 3, cmd: { type: 'answer', call: ringing.id } });
  const answered = await callEvent(a.session, 'answered');
  const open = async (context, link) => {
    const page = await context.newPage();
    const response = await page.goto(link);
    assert.equal(response.status(), 200);
    return { page, html: await response.text() };
  };
  const callerRoom = await open(a.context, answered.link);
  const calleeRoom = await open(b.context, ringing.link);
  return {
    rooms: [callerRoom.page, calleeRoom.page],
    html: [callerRoom.html, calleeRoom.html],
    close: async () => { await a.context.close(); await b.context.close(); },
  };
}

async function waitText(page, id, pattern, timeout = 20_000) {
  await page.waitForFunction(
    ({ id, source }) => new RegExp(source).test(document.getElementById(id).textContent),
    { id, source: pattern.source },
    { timeout },
  ).catch(async (e) => {
    const text = await page.locator(`#${id}`).textContent();
    throw new Error(`#${id} is "${text}", expected ${pattern}: ${e.message}`);
  });
}

/** Video frames decoded from the other person so far. */
function framesDecoded(page) {
  return page.evaluate(async () => {
    const pc = window.switchboardRoom.peerConnection();
    if (!pc) return 0;
    let decoded = 0;
    (await pc.getStats()).forEach((s) => {
      if (s.type === 'inbound-rtp' && s.kind === 'video') decoded += s.framesDecoded ?? 0;
    });
    return decoded;
  });
}

/** Waits until the page is connected, shows the other person's video, and frames keep coming. */
async function waitMedia(page, { beyond = 0 } = {}) {
  await page.waitForFunction(
    () => window.switchboardRoom.peerConnection()?.connectionState === 'connected'
      && document.getElementById('remote').videoWidth > 0,
    null,
    { timeout: 30_000 },
  );
  const deadline = Date.now() + 15_000;
  let frames = await framesDecoded(page);
  while (frames <= beyond + 5 && Date.now() < deadline) {
    await sleep(200);
    frames = await framesDecoded(page);
  }
  assert.ok(frames > beyond + 5, `video frames keep arriving (${frames}, before ${beyond})`);
  return frames;
}

/** The types of the selected candidate pair's two ends. */
function selectedPair(page) {
  return page.evaluate(async () => {
    const stats = await window.switchboardRoom.peerConnection().getStats();
    let pair;
    stats.forEach((s) => {
      if (s.type === 'transport' && s.selectedCandidatePairId) pair = stats.get(s.selectedCandidatePairId);
    });
    return [stats.get(pair.localCandidateId).candidateType, stats.get(pair.remoteCandidateId).candidateType];
  });
}

/** The kinds of candidate the other page sent this one. */
function remoteCandidateTypes(page) {
  return page.evaluate(async () => {
    const types = new Set();
    (await window.switchboardRoom.peerConnection().getStats()).forEach((s) => {
      if (s.type === 'remote-candidate') types.add(s.candidateType);
    });
    return [...types];
  });
}

before(async () => {
  const which = spawnSync('turnserver', ['--version']);
  assert.ok(!which.error, 'coturn is missing: apt-get install -y coturn');
  turnPort = await freePort();
  turnSecret = randomBytes(18).toString('base64url');
  turn = await startTurn(turnPort, turnSecret);
  browser = await launch(MEDIA_ARGS);
});

after(async () => {
  await browser?.close();
  await turn?.stop();
});

test('relay-only media connects through coturn, says so, and comes back after a relay restart', { timeout: 300_000 }, async (t) => {
  const server = await startServer(relayOnly(turnPort, turnSecret));
  t.after(() => server.stop());
  const { rooms, html, close } = await call(server.base, { id: 'ann', name: 'Ann' }, { id: 'bob', name: 'Bob' });
  t.after(close);

  await t.test('both see each other through the relay', async () => {
    await Promise.all(rooms.map((page) => waitMedia(page)));
    for (const page of rooms) {
      await waitText(page, 'status', /^Connected with /);
      await waitText(page, 'link', /^Connected through a relay$/);
      assert.deepEqual(await selectedPair(page), ['relay', 'relay']);
      // Relay-only: neither page learns an address of the other but the relay's.
      assert.deepEqual(await remoteCandidateTypes(page), ['relay']);
    }
  });

  await t.test('each page has its own credential and never the secret', () => {
    const usernames = html.map((page) => page.match(/"username":"([^"]+)"/)[1]);
    assert.notEqual(usernames[0], usernames[1]);
    for (const name of usernames) {
      const expires = Number(name.split(':')[0]);
      assert.ok(expires > Date.now() / 1000 + 3600, `${name} expires after the call may end`);
    }
    for (const page of html) assert.ok(!page.includes(turnSecret), 'the secret stays on the server');
  });

  await t.test('a relay restart mid-call: both pages say so and reconnect by themselves', async () => {
    const before = await Promise.all(rooms.map(framesDecoded));
    await turn.stop();
    await Promise.all(rooms.map((page) => waitText(page, 'status', /interrupted\. Reconnecting/, 30_000)));
    turn = await startTurn(turnPort, turnSecret);
    await Promise.all(rooms.map((page, i) => waitMedia(page, { beyond: before[i] })));
    for (const page of rooms) {
      await waitText(page, 'status', /^Connected with /);
      await waitText(page, 'link', /^Connected through a relay$/);
    }
  });

  await t.test('a relay that stays down: the pages say the connection was lost and "Try again" brings it back', async () => {
    await turn.stop();
    const stopped = Date.now();
    await Promise.all(rooms.map((page) => waitText(page, 'status', /^The connection to .* was lost\.$/, RECOVERY_SAID_WITHIN_MS)));
    assert.ok(Date.now() - stopped < RECOVERY_SAID_WITHIN_MS);
    for (const page of rooms) assert.ok(await page.locator('#retry').isVisible(), 'a retry button is offered');
    turn = await startTurn(turnPort, turnSecret);
    // The callee's button: it cannot offer, so it asks the caller to, through the server.
    await rooms[1].click('#retry');
    await Promise.all(rooms.map((page) => waitMedia(page)));
    for (const page of rooms) {
      await waitText(page, 'status', /^Connected with /);
      assert.ok(!(await page.locator('#retry').isVisible()));
    }
  });
});

/** Opens a call on a server with `flags` and checks both pages name the relay as the cause. */
async function relayFailureIsSaid(t, flags, cause) {
  const server = await startServer(flags);
  t.after(() => server.stop());
  const { rooms, close } = await call(server.base, { id: 'cy', name: 'Cy' }, { id: 'dee', name: 'Dee' });
  t.after(close);
  const opened = Date.now();
  await Promise.all(rooms.map((page) => waitText(page, 'status', cause, FAILURE_SAID_WITHIN_MS)));
  assert.ok(Date.now() - opened < FAILURE_SAID_WITHIN_MS);
  for (const page of rooms) {
    assert.notEqual(await page.evaluate(() => window.switchboardRoom.peerConnection()?.connectionState), 'connected');
    assert.ok(await page.locator('#retry').isVisible(), 'a retry button is offered');
  }
}

test('a wrong shared secret is named on the page, not an endless "connecting"', { timeout: 90_000 }, async (t) => {
  await relayFailureIsSaid(t, relayOnly(turnPort, `${turnSecret}-wrong`), /relay server.*refused/);
});

test('a relay that is not running is named on the page', { timeout: 90_000 }, async (t) => {
  await relayFailureIsSaid(t, relayOnly(await freePort(), turnSecret), /Could not reach the relay server/);
});
