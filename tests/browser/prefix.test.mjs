// Switchboard served under a path prefix: a reverse proxy passes /sb/… on as /… (WebSocket
// upgrades included) and the server's public_url ends in /sb/. Join links, the room page and
// its signalling socket must all stay under the prefix.
//
// Needs `cargo build -p switchboard`; run with `node --test prefix.test.mjs` in this folder.

import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import http from 'node:http';
import net from 'node:net';

import { callEvent, command, freePort, launch, sessionUser, startServer } from './harness.mjs';

const MEDIA_ARGS = [
  '--use-fake-ui-for-media-stream',
  '--use-fake-device-for-media-stream',
  '--allow-loopback-in-peer-connection',
];
const PREFIX = '/sb';

let server;
let proxy;
let front;
let browser;
/** Paths the proxy was asked for that lay outside the prefix (but the browser's own
 * /favicon.ico guess, which no page asks for). */
const strays = [];

/** A proxy on `port` that strips PREFIX and forwards to `upstream` (HTTP and upgrades). */
function startProxy(port, upstream) {
  const target = new URL(upstream);
  const strip = (url) => {
    if (url === PREFIX || url.startsWith(`${PREFIX}/`)) return url.slice(PREFIX.length) || '/';
    if (url !== '/favicon.ico') strays.push(url);
    return null;
  };
  const proxy = http.createServer((req, res) => {
    const path = strip(req.url);
    if (path === null) {
      res.writeHead(404).end('outside the prefix');
      return;
    }
    const upstreamReq = http.request({
      host: target.hostname, port: target.port, method: req.method, path, headers: req.headers,
    }, (upstreamRes) => {
      res.writeHead(upstreamRes.statusCode, upstreamRes.headers);
      upstreamRes.pipe(res);
    });
    upstreamReq.on('error', () => res.destroy());
    req.pipe(upstreamReq);
  });
  proxy.on('upgrade', (req, socket, head) => {
    const path = strip(req.url);
    if (path === null) {
      socket.end('HTTP/1.1 404 Not Found\r\n\r\n');
      return;
    }
    const upstreamSocket = net.connect(target.port, target.hostname, () => {
      const headers = Object.entries(req.headers).map(([k, v]) => `${k}: ${v}`).join('\r\n');
      upstreamSocket.write(`${req.method} ${path} HTTP/1.1\r\n${headers}\r\n\r\n`);
      upstreamSocket.write(head);
      upstreamSocket.pipe(socket);
      socket.pipe(upstreamSocket);
    });
    const close = () => { socket.destroy(); upstreamSocket.destroy(); };
    upstreamSocket.on('error', close);
    socket.on('error', close);
  });
  return new Promise((resolve) => proxy.listen(port, '127.0.0.1', () => resolve(proxy)));
}

before(async () => {
  const port = await freePort();
  front = `http://127.0.0.1:${port}${PREFIX}`;
  server = await startServer(['--public-url', `${front}/`]);
  proxy = await startProxy(port, server.base);
  browser = await launch(MEDIA_ARGS);
});

after(async () => {
  await browser?.close();
  proxy?.closeAllConnections();
  await new Promise((resolve) => (proxy ? proxy.close(resolve) : resolve()));
  await server?.stop();
});

/** A user logged in through the proxy, on a page the proxy served. */
const user = (who) => sessionUser(browser, front, who);

test('join links, the room page and its signalling stay under the prefix', { timeout: 120_000 }, async () => {
  const ann = await user({ id: 'ann', name: 'Ann' });
  const bob = await user({ id: 'bob', name: 'Bob' });
  await command(ann.session, { id: 2, cmd: { type: 'call', to: 'bob' } });
  const ringing = await callEvent(bob.session, 'ringing');
  await command(bob.session, { id: 3, cmd: { type: 'answer', call: ringing.id } });
  const answered = await callEvent(ann.session, 'answered');
  for (const link of [ringing.link, answered.link]) {
    assert.ok(link.startsWith(`${front}/join/`), link);
  }

  const rooms = [];
  for (const [context, link] of [[ann.context, answered.link], [bob.context, ringing.link]]) {
    const page = await context.newPage();
    assert.equal((await page.goto(link)).status(), 200);
    rooms.push(page);
  }
  for (const page of rooms) {
    await page.waitForFunction(
      () => window.switchboardRoom.peerConnection()?.connectionState === 'connected'
        && document.getElementById('remote').videoWidth > 0,
      null,
      { timeout: 30_000 },
    );
    assert.match(await page.locator('#status').textContent(), /^Connected with /);
    // Two pages on one machine with no relay configured reach each other directly.
    await page.waitForFunction(() => document.getElementById('link').textContent === 'Connected directly');
  }
  assert.deepEqual(strays, [], 'nothing was asked for outside the prefix');
});
