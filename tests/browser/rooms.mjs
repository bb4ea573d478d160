// Helpers for the tests that open the built-in room: fake media, a room page, its status line,
// and the wait for the other person's video.

import assert from 'node:assert/strict';

/** Fake camera and microphone, and WebRTC over 127.0.0.1 (this machine has no other interface). */
export const MEDIA_ARGS = [
  '--use-fake-ui-for-media-stream',
  '--use-fake-device-for-media-stream',
  '--allow-loopback-in-peer-connection',
];

export async function openRoom(context, link) {
  const page = await context.newPage();
  page.on('console', (msg) => {
    if (['error', 'warning'].includes(msg.type())) console.log(`[room console] ${msg.type()}: ${msg.text()}`);
  });
  const response = await page.goto(link);
  assert.equal(response.status(), 200);
  return page;
}

export function status(page) {
  return page.locator('#status').textContent();
}

export async function waitStatus(page, pattern) {
  await page.waitForFunction(
    (source) => new RegExp(source).test(document.getElementById('status').textContent),
    pattern.source,
    { timeout: 20_000 },
  ).catch(async (e) => {
    throw new Error(`status is "${await status(page)}", expected ${pattern}: ${e.message}`);
  });
}

/** Waits until the page's peer connection is up and the other person's video plays. */
export async function waitMedia(page) {
  await page.waitForFunction(
    () => {
      const pc = window.switchboardRoom.peerConnection();
      // A renegotiation makes a new connection: the one seen before does not count.
      return pc && pc !== window.previousPc && pc.connectionState === 'connected';
    },
    null,
    { timeout: 20_000 },
  );
  await page.waitForFunction(() => document.getElementById('remote').videoWidth > 0, null, { timeout: 20_000 });
  const frames = await page.evaluate(async () => {
    const stats = await window.switchboardRoom.peerConnection().getStats();
    let decoded = 0;
    stats.forEach((s) => {
      if (s.type === 'inbound-rtp' && s.kind === 'video') decoded += s.framesDecoded ?? 0;
    });
    return decoded;
  });
  assert.ok(frames > 0, 'remote video frames decoded');
}
