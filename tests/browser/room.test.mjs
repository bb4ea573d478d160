// The built-in video room end to end: the real server binary, two headless Chromium users who
// set up a call over the wire protocol, open their personal links and see each other.
//
// Needs `cargo build -p switchboard` first; run with `node --test room.test.mjs` in this folder.

import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import path from 'node:path';

import { callEvent, command, launch, sessionUser, startServer } from './harness.mjs';
import { MEDIA_ARGS, openRoom, status, waitMedia, waitStatus } from './rooms.mjs';

// Markup and quotes in a display name must come out as text.
const ANN = { id: 'ann', name: `Ann <b id="injected">O'Neil</b> & "co"` };
const BOB = { id: 'bob', name: 'Bob' };

let server;
let base;
let browser;

/** A user: a browser context with one page holding a Switchboard session, logged in. */
const user = (who) => sessionUser(browser, base, who);

/** Saves a screenshot into $ROOM_SCREENSHOTS, when set, for a person to look at. */
async function snapshot(page, name) {
  const into = process.env.ROOM_SCREENSHOTS;
  if (into) await page.screenshot({ path: path.join(into, `${name}.png`) });
}

before(async () => {
  server = await startServer();
  base = server.base;
  browser = await launch(MEDIA_ARGS);
});

after(async () => {
  await browser?.close();
  await server?.stop();
});

test('two participants see each other, rejoin after a reload, and hang up', { timeout: 180_000 }, async (t) => {
  const ann = await user(ANN);
  const bob = await user(BOB);

  await command(ann.session, { id: 2, cmd: { type: 'call', to: 'bob' } });
  const ringing = await callEvent(bob.session, 'ringing');
  assert.equal(ringing.role, 'callee');
  assert.match(ringing.link, /\/join\/[^/]+$/);
  await command(bob.session, { id: 3, cmd: { type: 'answer', call: ringing.id } });
  const answered = await callEvent(ann.session, 'answered');
  assert.equal(answered.id, ringing.id);
  assert.match(answered.link, /\/join\/[^/]+$/);
  assert.notEqual(answered.link, ringing.link);

  const annRoom = await openRoom(ann.context, answered.link);
  await waitStatus(annRoom, /^Waiting for /);
  const bobRoom = await openRoom(bob.context, ringing.link);

  await t.test('both connect and receive video', async () => {
    await Promise.all([waitMedia(annRoom), waitMedia(bobRoom)]);
    await waitStatus(annRoom, /^Connected with Bob$/);
    await snapshot(bobRoom, 'bob-connected');
    await waitStatus(bobRoom, /^Connected with /);
  });

  await t.test('the display name is shown as text, never markup', async () => {
    assert.equal(await bobRoom.locator('#peer-name').textContent(), ANN.name);
    assert.equal(await bobRoom.locator('#injected').count(), 0);
    assert.equal(await bobRoom.title(), `Call with ${ANN.name} · Switchboard`);
    assert.equal(await bobRoom.locator('#status').textContent(), `Connected with ${ANN.name}`);
  });

  await t.test('turning the microphone off is shown to the other person', async () => {
    await bobRoom.click('#mic');
    assert.equal(await bobRoom.locator('#mic').getAttribute('aria-pressed'), 'false');
    await annRoom.waitForFunction(
      () => document.getElementById('peer-note').textContent === 'Bob turned off their microphone',
    );
    await bobRoom.click('#mic');
    await annRoom.waitForFunction(() => document.getElementById('peer-note').hidden);
  });

  await t.test('a reload rejoins and renegotiates', async () => {
    await annRoom.evaluate(() => { window.previousPc = window.switchboardRoom.peerConnection(); });
    await bobRoom.reload();
    await Promise.all([waitMedia(annRoom), waitMedia(bobRoom)]);
  });

  let bobRoomAgain;
  await t.test('closing the page is leaving, and the link still works', async () => {
    await bobRoom.close();
    await waitStatus(annRoom, /^The other person left/);
    bobRoomAgain = await openRoom(bob.context, ringing.link);
    await Promise.all([waitMedia(annRoom), waitMedia(bobRoomAgain)]);
  });

  await t.test('a made-up link is refused', async () => {
    const stranger = await browser.newContext();
    const page = await stranger.newPage();
    const response = await page.goto(`${base}/join/${'x'.repeat(32)}`);
    assert.equal(response.status(), 404);
    assert.match(await page.locator('body').textContent(), /no such call|has ended/i);
    const refused = await page.evaluate((url) => new Promise((resolve) => {
      const ws = new WebSocket(url);
      ws.onopen = () => resolve(false);
      ws.onerror = () => resolve(true);
    }), `${base.replace(/^http/, 'ws')}/join/${'x'.repeat(32)}/signal`);
    assert.ok(refused, 'signalling socket refused');
    await stranger.close();
  });

  await t.test('hanging up ends the call for both', async () => {
    await annRoom.click('#hangup');
    await waitStatus(annRoom, /^You hung up\. The call has ended\.$/);
    await waitStatus(bobRoomAgain, /hung up\. The call has ended\.$/);
    assert.ok(await bobRoomAgain.locator('#hangup').isDisabled());
    await snapshot(bobRoomAgain, 'bob-ended');
    const annEnded = await callEvent(ann.session, 'ended');
    assert.equal(annEnded.id, ringing.id);
    const bobEnded = await callEvent(bob.session, 'ended');
    assert.equal(bobEnded.id, ringing.id);
    // The links are dead now.
    const page = await ann.context.newPage();
    assert.equal((await page.goto(answered.link)).status(), 404);
  });
});

test('the callee may come first, a second window takes over, and a hang-up from the site ends the room', { timeout: 120_000 }, async (t) => {
  const cy = await user({ id: 'cy', name: 'Cy' });
  const dee = await user({ id: 'dee', name: 'Dee' });
  await command(cy.session, { id: 2, cmd: { type: 'call', to: 'dee' } });
  const ringing = await callEvent(dee.session, 'ringing');
  await command(dee.session, { id: 3, cmd: { type: 'answer', call: ringing.id } });
  const answered = await callEvent(cy.session, 'answered');

  const deeRoom = await openRoom(dee.context, ringing.link);
  await waitStatus(deeRoom, /^Waiting for Cy to join…$/);
  const cyRoom = await openRoom(cy.context, answered.link);
  await Promise.all([waitMedia(cyRoom), waitMedia(deeRoom)]);

  await t.test('a reload of the caller renegotiates too', async () => {
    await deeRoom.evaluate(() => { window.previousPc = window.switchboardRoom.peerConnection(); });
    await cyRoom.reload();
    await Promise.all([waitMedia(cyRoom), waitMedia(deeRoom)]);
  });

  let deeSecond;
  await t.test('the newest window of a participant replaces the older one', async () => {
    await cyRoom.evaluate(() => { window.previousPc = window.switchboardRoom.peerConnection(); });
    deeSecond = await openRoom(dee.context, ringing.link);
    await waitStatus(deeRoom, /^This call is now open in another window\.$/);
    await Promise.all([waitMedia(cyRoom), waitMedia(deeSecond)]);
  });

  await t.test('hanging up from the site closes both room pages', async () => {
    await command(dee.session, { id: 4, cmd: { type: 'hangup', call: ringing.id } });
    await waitStatus(cyRoom, /^The call has ended\.$/);
    await waitStatus(deeSecond, /^The call has ended\.$/);
    // The page that was replaced keeps saying so.
    assert.equal(await status(deeRoom), 'This call is now open in another window.');
    await callEvent(cy.session, 'ended');
  });
});
