// Two nodes of a cluster on one real Redis, each a real server binary: a user on each, a call
// between them, and the two room pages each connected through a different node.
//
// Needs `cargo build -p switchboard` and Debian's redis-server.

import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';

import { callEvent, command, launch, sessionUser, startRedis, startServer } from './harness.mjs';
import { MEDIA_ARGS, openRoom, waitMedia, waitStatus } from './rooms.mjs';

let redis;
let nodes = [];
let browser;
let shared;

before(async () => {
  redis = await startRedis();
  // Both nodes record into one SQLite file, as nodes on one machine may.
  shared = mkdtempSync(path.join(tmpdir(), 'switchboard-cluster-'));
  for (let i = 0; i < 2; i += 1) {
    nodes.push(await startServer(['--redis-url', redis.url], { dir: shared, keep: true }));
  }
  browser = await launch(MEDIA_ARGS);
});

after(async () => {
  await browser?.close();
  for (const node of nodes) await node.stop();
  await redis?.stop();
  if (shared) rmSync(shared, { recursive: true, force: true });
});

test('a call between users on two nodes, its room pages on different nodes', { timeout: 120_000 }, async () => {
  const [one, two] = nodes;
  assert.notEqual(one.base, two.base);
  const ann = await sessionUser(browser, one.base, { id: 'ann', name: 'Ann' });
  const bob = await sessionUser(browser, two.base, { id: 'bob', name: 'Bob' });

  // Bob may take a moment to be online for Ann's node: until then a call finds him offline.
  let ringing;
  for (let id = 2; !ringing; id += 1) {
    await command(ann.session, { id, cmd: { type: 'call', to: 'bob' } });
    const answer = await ann.session.waitForFunction(
      (id) => window.sb.frames.find((f) => f.re === id),
      id,
      { timeout: 10_000 },
    ).then((h) => h.jsonValue());
    if (answer.ev.type === 'call') ringing = await callEvent(bob.session, 'ringing');
    else assert.equal(answer.ev.code, 'offline');
  }
  assert.ok(ringing.link.startsWith(two.base), 'Bob\'s link is on his node');
  await command(bob.session, { id: 100, cmd: { type: 'answer', call: ringing.id } });
  const answered = await callEvent(ann.session, 'answered');
  assert.ok(answered.link.startsWith(one.base), 'Ann\'s link is on hers');

  const annRoom = await openRoom(ann.context, answered.link);
  await waitStatus(annRoom, /^Waiting for /);
  const bobRoom = await openRoom(bob.context, ringing.link);
  await Promise.all([waitMedia(annRoom), waitMedia(bobRoom)]);
  await waitStatus(annRoom, /^Connected with Bob$/);
  await waitStatus(bobRoom, /^Connected with Ann$/);

  await bobRoom.click('#hangup');
  await waitStatus(bobRoom, /^You hung up\. The call has ended\.$/);
  await waitStatus(annRoom, /^Bob hung up\. The call has ended\.$/);
  assert.equal((await callEvent(ann.session, 'ended')).id, ringing.id);
  assert.equal((await callEvent(bob.session, 'ended')).id, ringing.id);
});
