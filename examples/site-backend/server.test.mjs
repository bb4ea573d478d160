// The example backend over real HTTP: a logged-in user's page carries a token for that user,
// and webhooks are accepted only when signed recently with the secret, and once per event id.

import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import { createHmac } from 'node:crypto';
import jwt from 'jsonwebtoken';
import { createBackend } from './server.mjs';

const JWT_SECRET = 'a backend-test identity secret of 32+ bytes';
const WEBHOOK_SECRET = 'a backend-test webhook secret of 32+ bytes';
const SWITCHBOARD = 'http://127.0.0.1:9';

let backend;
let base;
const logged = [];
before(async () => {
  backend = createBackend({
    switchboardUrl: SWITCHBOARD,
    jwtSecret: JWT_SECRET,
    webhookSecret: WEBHOOK_SECRET,
    log: (...parts) => logged.push(parts.join(' ')),
  });
  await new Promise((resolve) => backend.listen(0, '127.0.0.1', resolve));
  base = `http://127.0.0.1:${backend.address().port}`;
});
after(() => new Promise((resolve) => backend.close(resolve)));

/** Logs in as {id, name} and returns the session cookie. */
async function logIn(id, name) {
  const res = await fetch(`${base}/login?${new URLSearchParams({ id, name })}`, { redirect: 'manual' });
  assert.equal(res.status, 303);
  assert.equal(res.headers.get('location'), '/');
  return res.headers.get('set-cookie').split(';')[0];
}

function verified(token) {
  const claims = jwt.verify(token, JWT_SECRET, { algorithms: ['HS256'] });
  const life = claims.exp - Date.now() / 1000;
  assert.ok(life > 60 && life <= 300, `the token lives ${life} s`);
  return claims;
}

test('a logged-in user\'s page includes the client and a token for that user', async () => {
  const anonymous = await fetch(`${base}/`, { redirect: 'manual' });
  assert.equal(anonymous.status, 303);
  assert.equal(anonymous.headers.get('location'), '/login');
  assert.equal((await fetch(`${base}/switchboard-token`)).status, 401);

  const name = 'Ann </script><b>';
  const cookie = await logIn('ann', name);
  const html = await (await fetch(`${base}/`, { headers: { cookie } })).text();
  assert.ok(html.includes(`<script src="${SWITCHBOARD}/client/switchboard.js"></script>`), html);
  assert.ok(!html.includes(name), 'the name cannot close the script element');
  const config = JSON.parse(/const me = (.*);/.exec(html)[1]);
  assert.deepEqual({ ...config, token: undefined }, { server: SWITCHBOARD, id: 'ann', name, token: undefined });
  assert.deepEqual(
    (({ sub, name }) => ({ sub, name }))(verified(config.token)),
    { sub: 'ann', name },
  );

  const fresh = await (await fetch(`${base}/switchboard-token`, { headers: { cookie } })).text();
  assert.equal(verified(fresh).sub, 'ann');
  assert.throws(() => jwt.verify(fresh, 'another secret', { algorithms: ['HS256'] }));
});

/** Posts `body` as Switchboard would, signed with `secret` at `t` (unix seconds). */
function postWebhook(body, { secret = WEBHOOK_SECRET, t = Math.floor(Date.now() / 1000), id = body.id, sent } = {}) {
  const raw = JSON.stringify(body);
  const v1 = createHmac('sha256', secret).update(`${t}.${raw}`).digest('hex');
  return fetch(`${base}/webhooks`, {
    method: 'POST',
    headers: {
      'content-type': 'application/json',
      'switchboard-event-id': id,
      'switchboard-signature': `t=${t},v1=${v1}`,
    },
    body: sent ?? raw,
  });
}

function callEvent(id, type) {
  return {
    id,
    type,
    at: Date.now(),
    call: {
      id: 'c-1',
      caller: { id: 'ann', name: 'Ann' },
      callee: { id: 'bob', name: 'Bob' },
      state: type.slice('call.'.length),
      placed_at: Date.now(),
      answered_at: null,
      ended_at: null,
      reason: null,
    },
  };
}

async function received() {
  return (await fetch(`${base}/webhooks/received`)).json();
}

test('webhooks: signed ones are kept once each, in order; forged, stale and malformed ones are refused', async () => {
  const ringing = callEvent('ev-1', 'call.ringing');
  assert.equal((await postWebhook(ringing)).status, 200);
  assert.equal((await postWebhook(ringing)).status, 200, 'a redelivery is acknowledged');
  assert.deepEqual(await received(), [ringing], 'and kept once');
  const ringingLines = logged.filter((line) => line.includes('call.ringing') && line.includes('ev-1'));
  assert.equal(ringingLines.length, 1, `logged and acted on once: ${logged.join('\n')}`);

  const answered = callEvent('ev-2', 'call.answered');
  const now = Math.floor(Date.now() / 1000);
  const refused = {
    'another secret': postWebhook(answered, { secret: 'not the webhook secret at all, 32+ bytes' }),
    'a body other than the signed one': postWebhook(answered, { sent: JSON.stringify({ ...answered, type: 'call.ended' }) }),
    'a timestamp 6 minutes old': postWebhook(answered, { t: now - 360 }),
    'a timestamp 6 minutes ahead': postWebhook(answered, { t: now + 360 }),
    'an id that is not the body\'s': postWebhook(answered, { id: 'ev-other' }),
    'no signature': fetch(`${base}/webhooks`, { method: 'POST', body: JSON.stringify(answered) }),
  };
  for (const [what, response] of Object.entries(refused)) {
    assert.equal((await response).status, 400, what);
  }
  assert.deepEqual(await received(), [ringing], 'nothing refused was kept');

  // Four minutes of clock difference are within the tolerance.
  assert.equal((await postWebhook(answered, { t: now - 240 })).status, 200);
  const user = { id: 'ev-3', type: 'user.online', at: Date.now(), user: { id: 'bob', name: 'Bob' } };
  assert.equal((await postWebhook(user)).status, 200);
  assert.deepEqual((await received()).map((e) => e.id), ['ev-1', 'ev-2', 'ev-3']);
});
