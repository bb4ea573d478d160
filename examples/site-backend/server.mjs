// An example site backend for Switchboard: pages for the logged-in user carrying the token that
// proves who they are, and webhooks from Switchboard received, verified and logged.
//
//   SWITCHBOARD_URL=https://switchboard.example.org SWITCHBOARD_JWT_SECRET=… \
//   SWITCHBOARD_WEBHOOK_SECRET=… PORT=3000 node server.mjs
import { createHmac, timingSafeEqual } from 'node:crypto';
import { createServer } from 'node:http';
import { pathToFileURL } from 'node:url';
import jwt from 'jsonwebtoken';

/** A webhook signed further than this from our clock is refused, so an old one cannot be replayed. */
const WEBHOOK_TOLERANCE_SECONDS = 5 * 60;
/** Events kept for de-duplication and for GET /webhooks/received; a real site keeps ids in its database. */
const KEEP_EVENTS = 1000;
const MAX_WEBHOOK_BYTES = 1 << 20;

export function createBackend({ switchboardUrl, jwtSecret, webhookSecret, log = console.log }) {
  const received = new Map(); // event id → event, oldest first

  const routes = {
    'GET /': (req, res) => {
      const user = loggedIn(req);
      if (!user) return redirect(res, '/login');
      const token = switchboardToken(jwtSecret, user);
      send(res, 200, 'text/html; charset=utf-8', page(switchboardUrl, { ...user, token }));
    },
    // Stands in for the site's own login: here anyone can be anyone.
    'GET /login': (req, res, url) => {
      const id = url.searchParams.get('id');
      if (!id) return send(res, 200, 'text/html; charset=utf-8', LOGIN_FORM);
      const user = Buffer.from(JSON.stringify({ id, name: url.searchParams.get('name') || id })).toString('base64url');
      res.setHeader('set-cookie', `user=${user}; Path=/; HttpOnly; SameSite=Lax`);
      redirect(res, '/');
    },
    // The page's token provider: a fresh token shortly before the last one expires.
    'GET /switchboard-token': (req, res) => {
      const user = loggedIn(req);
      if (!user) return send(res, 401, 'text/plain', 'log in first');
      send(res, 200, 'text/plain', switchboardToken(jwtSecret, user));
    },
    'POST /webhooks': async (req, res) => {
      const body = await readBody(req);
      if (!body) return send(res, 413, 'text/plain', 'too large');
      const refusal = checkSignature(req.headers['switchboard-signature'], body, webhookSecret);
      if (refusal) return send(res, 400, 'text/plain', refusal);
      let event;
      try { event = JSON.parse(body); } catch { return send(res, 400, 'text/plain', 'not JSON'); }
      const id = req.headers['switchboard-event-id'];
      if (!id || id !== event.id) return send(res, 400, 'text/plain', 'event id missing or not the body\'s');
      // Delivery is at least once: a retried event is acknowledged again and acted on once.
      if (received.has(id)) return send(res, 200, 'text/plain', 'already had it');
      received.set(id, event);
      if (received.size > KEEP_EVENTS) received.delete(received.keys().next().value);
      const { call, user } = event;
      log(`webhook ${event.type} ${id}`, call ? `call ${call.id} ${call.caller?.id} → ${call.callee?.id}` : user?.id);
      // Act on the event here: e.g. tell the callee of a missed call by e-mail.
      send(res, 200, 'text/plain', 'ok');
    },
    'GET /webhooks/received': (req, res) => {
      send(res, 200, 'application/json', JSON.stringify([...received.values()]));
    },
  };

  return createServer(async (req, res) => {
    const url = new URL(req.url, 'http://site');
    const route = routes[`${req.method} ${url.pathname}`];
    if (!route) return send(res, 404, 'text/plain', 'not found');
    try {
      await route(req, res, url);
    } catch (e) {
      log(`${req.method} ${url.pathname} failed:`, e);
      if (!res.headersSent) send(res, 500, 'text/plain', 'internal error');
    }
  });
}

/** The identity token for `user`: HS256 with sub, name and a short exp (the page renews it). */
function switchboardToken(secret, user) {
  return jwt.sign({ sub: user.id, name: user.name }, secret, { algorithm: 'HS256', expiresIn: '5m' });
}

/** Why a webhook's `t=…,v1=…` header does not sign `body`, or nothing when it does. */
function checkSignature(header, body, secret) {
  const fields = (header ?? '').split(',').map((part) => part.trim().split('='));
  const t = fields.find(([key]) => key === 't')?.[1];
  const signatures = fields.filter(([key, value]) => key === 'v1' && /^[0-9a-f]{64}$/.test(value));
  if (!/^\d+$/.test(t ?? '') || signatures.length === 0) return 'no signature';
  if (Math.abs(Date.now() / 1000 - Number(t)) > WEBHOOK_TOLERANCE_SECONDS) return 'timestamp too far off';
  const expected = createHmac('sha256', secret).update(`${t}.`).update(body).digest();
  const valid = signatures.some(([, hex]) => timingSafeEqual(Buffer.from(hex, 'hex'), expected));
  return valid ? undefined : 'bad signature';
}

/** The user of the site's session (here a cookie set by /login). */
function loggedIn(req) {
  const cookie = /(?:^|;\s*)user=([^;]+)/.exec(req.headers.cookie ?? '')?.[1];
  try {
    return cookie && JSON.parse(Buffer.from(cookie, 'base64url').toString());
  } catch {
    return undefined;
  }
}

/** The raw body, or nothing when it is larger than a webhook can be. */
async function readBody(req) {
  const chunks = [];
  let size = 0;
  for await (const chunk of req) {
    size += chunk.length;
    if (size > MAX_WEBHOOK_BYTES) return undefined;
    chunks.push(chunk);
  }
  return Buffer.concat(chunks);
}

function send(res, status, type, body) {
  res.writeHead(status, { 'content-type': type }).end(body);
}

function redirect(res, location) {
  res.writeHead(303, { location }).end();
}

const LOGIN_FORM = `<!doctype html><meta charset="utf-8"><title>Log in</title>
<form action="/login"><input name="id" placeholder="user id" required>
<input name="name" placeholder="display name"> <button>Log in</button></form>`;

/** The page of a logged-in user, with the Switchboard client and the my_on* callbacks. */
function page(server, me) {
  // In a script element, `<` is escaped so no value can close it.
  const config = JSON.stringify({ server, ...me }).replace(/</g, '\\u003c');
  const src = `${server}/client/switchboard.js`.replace(/[&"<>]/g, (c) => `&#${c.charCodeAt(0)};`);
  return `<!doctype html>
<html lang="en"><head><meta charset="utf-8"><title>Example site</title>
<script src="${src}"></script></head>
<body>
<p>Logged in as <b id="me"></b> (<a href="/login">change</a>) · Switchboard: <span id="status">connecting…</span></p>
<form id="call"><input id="callee" placeholder="user id to call" required> <button>Call</button></form>
<p id="incoming" hidden>Call from <b id="caller"></b> <button id="answer">Answer</button> <button id="reject">Reject</button></p>
<p id="incall" hidden>In a call with <b id="peer"></b>: <a id="room" target="_blank" rel="noopener">open the room</a>
  <button id="hangup">Hang up</button></p>
<p id="note"></p>
<script>
  const me = ${config};
  const $ = (id) => document.getElementById(id);
  $('me').textContent = me.name;
  sv_setserveraddress(me.server);
  sv_settokenprovider(() => fetch('/switchboard-token').then((r) => (r.ok ? r.text() : Promise.reject(new Error(r.status)))));
  sv_setuserinfo(me.id, me.name, me.token);

  let ringingLink = '';
  function inCall(name, link) {
    $('peer').textContent = name;
    $('room').href = link;
    $('incoming').hidden = true;
    $('incall').hidden = false;
  }
  function note(text) { $('note').textContent = text; }
  function my_onstatuschange(online) { $('status').textContent = online ? 'online' : 'offline'; }
  function my_onstatusmessage(text) { note(text); }
  function my_onmakecall(ok) { if (ok) note('Ringing…'); }
  function my_onincomingcall(name, link) { ringingLink = link; $('caller').textContent = name; $('incoming').hidden = false; }
  function my_clearincoming() { $('incoming').hidden = true; }
  function my_oncallanswered(name, link) { inCall(name, link); }
  function my_oncallrejected(name) { note(name + ' rejected the call'); }
  function my_clearanswered() { $('incall').hidden = true; }
  function my_oncallended(name, reason) { $('incall').hidden = true; note('Call with ' + name + ' ended: ' + reason); }
  $('call').onsubmit = (e) => { e.preventDefault(); sv_makecall($('callee').value.trim()); };
  $('answer').onclick = () => { sv_answercall(); inCall($('caller').textContent, ringingLink); };
  $('reject').onclick = () => sv_rejectcall();
  $('hangup').onclick = () => sv_hangup();
</script></body></html>`;
}

if (import.meta.url === pathToFileURL(process.argv[1]).href) {
  const setting = (name) => process.env[name] || (console.error(`set ${name}`), process.exit(2));
  const backend = createBackend({
    switchboardUrl: setting('SWITCHBOARD_URL').replace(/\/$/, ''),
    jwtSecret: setting('SWITCHBOARD_JWT_SECRET'),
    webhookSecret: setting('SWITCHBOARD_WEBHOOK_SECRET'),
  });
  const port = Number(process.env.PORT ?? 3000);
  backend.listen(port, process.env.HOST ?? '127.0.0.1', () => {
    const { address, port } = backend.address();
    console.log(`example site listening on http://${address}:${port}/`);
  });
}
