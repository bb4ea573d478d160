// The nginx site in deploy/ as shipped: Debian's nginx terminates TLS (a self-signed
// certificate) in front of the real server binary, and a call goes through https:// end to end:
// the origin check against public_url, the client's socket, the /join redirect and the built-in
// room's signalling socket, all behind the proxy.

import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import { execFileSync, spawn } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { request } from 'node:https';
import { tmpdir } from 'node:os';
import path from 'node:path';

import { callEvent, command, freePort, launch, root, sessionUser, sleep, startServer } from './harness.mjs';
import { MEDIA_ARGS, openRoom, waitMedia } from './rooms.mjs';

let dir;
let nginx;
let server;
let browser;
let base;
let nginxLog = '';

/** The shipped site, pointed at this test's ports, certificate and server. */
function site({ tlsPort, plainPort, upstream, cert, key }) {
  const text = readFileSync(path.join(root, 'deploy/nginx/switchboard.conf'), 'utf8');
  const swapped = text
    .replaceAll('switchboard.example.org;', '127.0.0.1;')
    .replace('listen 443 ssl http2;', `listen 127.0.0.1:${tlsPort} ssl http2;`)
    .replace('listen [::]:443 ssl http2;', '')
    .replace('listen 80;', `listen 127.0.0.1:${plainPort};`)
    .replace('listen [::]:80;', '')
    .replace('server 127.0.0.1:8080;', `server ${upstream};`)
    .replace(/ssl_certificate .*;/, `ssl_certificate ${cert};`)
    .replace(/ssl_certificate_key .*;/, `ssl_certificate_key ${key};`);
  assert.notEqual(swapped, text);
  const settings = swapped.split('\n').filter((line) => !line.trim().startsWith('#'));
  assert.ok(!settings.some((line) => line.includes('example.org')), swapped);
  return swapped;
}

before(async () => {
  dir = mkdtempSync(path.join(tmpdir(), 'switchboard-nginx-'));
  const cert = path.join(dir, 'cert.pem');
  const key = path.join(dir, 'key.pem');
  execFileSync('openssl', [
    'req', '-x509', '-newkey', 'rsa:2048', '-nodes', '-days', '1', '-subj', '/CN=127.0.0.1',
    '-addext', 'subjectAltName=IP:127.0.0.1', '-keyout', key, '-out', cert,
  ], { stdio: 'ignore' });
  const tlsPort = await freePort();
  const plainPort = await freePort();
  base = `https://127.0.0.1:${tlsPort}`;
  server = await startServer(['--public-url', base, '--trusted-proxies', '127.0.0.1']);
  const upstream = new URL(server.base).host;
  writeFileSync(path.join(dir, 'site.conf'), site({ tlsPort, plainPort, upstream, cert, key }));
  writeFileSync(path.join(dir, 'nginx.conf'), `
${process.getuid?.() === 0 ? 'user root;' : ''}
worker_processes 1;
pid ${dir}/nginx.pid;
error_log ${dir}/error.log warn;
events { worker_connections 256; }
http {
  access_log off;
  client_body_temp_path ${dir}/body;
  proxy_temp_path ${dir}/proxy;
  fastcgi_temp_path ${dir}/fastcgi;
  uwsgi_temp_path ${dir}/uwsgi;
  scgi_temp_path ${dir}/scgi;
  include ${dir}/site.conf;
}
`);
  nginx = spawn('nginx', ['-p', dir, '-c', path.join(dir, 'nginx.conf'), '-g', 'daemon off;'], {
    stdio: ['ignore', 'ignore', 'pipe'],
  });
  nginx.stderr.on('data', (chunk) => { nginxLog += chunk; });
  const failed = new Promise((_, reject) => nginx.on('error', (e) => reject(new Error(`nginx: ${e.message}`))));
  const ready = (async () => {
    for (let i = 0; i < 100; i += 1) {
      if (await status('/healthz') === 200) return;
      await sleep(100);
    }
    throw new Error(`nginx did not serve ${base}/healthz:\n${nginxLog}`);
  })();
  await Promise.race([ready, failed]);
  browser = await launch([...MEDIA_ARGS, '--ignore-certificate-errors']);
});

after(async () => {
  await browser?.close();
  nginx?.kill('SIGTERM');
  await server?.stop();
  if (dir) rmSync(dir, { recursive: true, force: true });
});

/** An HTTPS request through nginx (the test's certificate is self-signed). */
function status(pathname, headers = {}) {
  return new Promise((resolve) => {
    const req = request(`${base}${pathname}`, { headers, rejectUnauthorized: false }, (res) => {
      res.resume();
      resolve(res.statusCode);
    });
    req.on('error', () => resolve(0));
    req.end();
  });
}

/** The status of a WebSocket upgrade of /ws sent with `origin`. */
function upgrade(origin) {
  return new Promise((resolve) => {
    const req = request(`${base}/ws`, {
      rejectUnauthorized: false,
      headers: {
        Connection: 'Upgrade',
        Upgrade: 'websocket',
        'Sec-WebSocket-Version': '13',
        'Sec-WebSocket-Key': 'dGhlIHNhbXBsZSBub25jZQ==',
        Origin: origin,
      },
    });
    req.on('upgrade', (res, socket) => { socket.destroy(); resolve(res.statusCode); });
    req.on('response', (res) => { res.resume(); resolve(res.statusCode); });
    req.on('error', () => resolve(0));
    req.end();
  });
}

test('the proxy admits the public origin only, and keeps /metrics private', async () => {
  assert.equal(await upgrade(base), 101);
  assert.equal(await upgrade(`http://127.0.0.1:${new URL(base).port}`), 403, 'scheme differs');
  assert.equal(await upgrade('https://evil.example.org'), 403);
  assert.equal(await status('/metrics'), 404);
  assert.equal(await status('/'), 200);
});

test('a call through https:// reaches the room, and both participants see each other', { timeout: 120_000 }, async () => {
  const ann = await sessionUser(browser, base, { id: 'ann', name: 'Ann' });
  const bob = await sessionUser(browser, base, { id: 'bob', name: 'Bob' });
  await command(ann.session, { id: 2, cmd: { type: 'call', to: 'bob' } });
  const ringing = await callEvent(bob.session, 'ringing');
  assert.ok(ringing.link.startsWith(`${base}/join/`), ringing.link);
  await command(bob.session, { id: 3, cmd: { type: 'answer', call: ringing.id } });
  const answered = await callEvent(ann.session, 'answered');
  assert.ok(answered.link.startsWith(`${base}/join/`), answered.link);
  const annRoom = await openRoom(ann.context, answered.link);
  const bobRoom = await openRoom(bob.context, ringing.link);
  assert.ok(annRoom.url().startsWith(base), annRoom.url());
  await Promise.all([waitMedia(annRoom), waitMedia(bobRoom)]);
  await command(ann.session, { id: 4, cmd: { type: 'hangup', call: answered.id } });
  await callEvent(bob.session, 'ended');
});
