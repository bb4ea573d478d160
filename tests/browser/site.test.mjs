// The page contract as site owners use it: a 2010-style page on another origin, and display
// names that carry markup.

import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import { createServer } from 'node:http';
import {
  countCalls, freePort, launch, online, openTab, sitePage, sleep, startServer, waitCall,
} from './harness.mjs';

let server;
let browser;
let site;
let siteOrigin;
before(async () => {
  // The "web site": a plain static server on its own port, so its pages are cross-origin.
  const port = await freePort();
  siteOrigin = `http://127.0.0.1:${port}`;
  server = await startServer(['--allowed-origins', siteOrigin]);
  site = createServer((req, res) => {
    res.writeHead(200, { 'content-type': 'text/html; charset=utf-8' });
    res.end(sitePage(`${server.base}/client/switchboard.js`, { server: server.base }));
  });
  await new Promise((resolve) => site.listen(port, '127.0.0.1', resolve));
  browser = await launch();
});
after(async () => {
  await browser?.close();
  await new Promise((resolve) => (site ? site.close(resolve) : resolve()));
  await server?.stop();
});

async function sitePageFor(who) {
  const context = await browser.newContext();
  const page = await context.newPage();
  page.on('pageerror', (e) => console.error('page error:', e.message));
  const q = new URLSearchParams({ id: who.id, name: who.name });
  await page.goto(`${siteOrigin}/forum/page.php?${q}`);
  return page;
}

test('a 2010 page on another origin works unchanged', async () => {
  const ivy = await sitePageFor({ id: 'ivy', name: 'Ivy' });
  const jack = await sitePageFor({ id: 'jack', name: 'Jack' });
  await online(ivy);
  await online(jack);
  await ivy.evaluate(() => sv_makecall('jack'));
  await waitCall(ivy, 'my_onmakecall', ([ok]) => ok === true);
  const [caller, link] = await waitCall(jack, 'my_onincomingcall');
  assert.equal(caller, 'Ivy');
  assert.ok(link.startsWith(server.base), link);
  await jack.evaluate(() => sv_answercall());
  const [callee] = await waitCall(ivy, 'my_oncallanswered');
  assert.equal(callee, 'Jack');
  await ivy.context().close();
  await jack.context().close();
});

test('the client files are served to other origins (CORS)', async () => {
  for (const file of ['switchboard.js', 'pkg/switchboard_client.js', 'pkg/switchboard_client_bg.wasm']) {
    const res = await fetch(`${server.base}/client/${file}`, { headers: { origin: siteOrigin } });
    assert.equal(res.status, 200, file);
    assert.equal(res.headers.get('access-control-allow-origin'), '*', file);
  }
});

test('the bundle is sent gzipped and cached for good under a versioned URL; the loader briefly', async () => {
  const loader = await fetch(`${server.base}/client/switchboard.js`);
  assert.match(loader.headers.get('cache-control'), /max-age=300\b/);
  const text = await loader.text();
  const wasmUrl = text.match(/'(pkg\/switchboard_client_bg\.wasm\?v=[0-9a-f]+)'/)?.[1];
  assert.ok(wasmUrl, 'the loader names a versioned bundle');
  const wasm = await fetch(`${server.base}/client/${wasmUrl}`, { headers: { 'accept-encoding': 'gzip' } });
  assert.equal(wasm.status, 200);
  assert.equal(wasm.headers.get('content-encoding'), 'gzip');
  assert.match(wasm.headers.get('cache-control'), /immutable/);
  assert.equal(wasm.headers.get('access-control-allow-origin'), '*');
  // A version the server no longer has is not cached for good under that name.
  const stale = await fetch(`${server.base}/client/pkg/switchboard_client_bg.wasm?v=0`);
  assert.equal(stale.headers.get('cache-control'), 'no-cache');
});

test('going online: time from navigation and bytes downloaded, first and repeat view', async (t) => {
  const runs = [];
  for (let i = 0; i < 7; i += 1) {
    const context = await browser.newContext();
    const page = await context.newPage();
    const timing = async () => {
      await online(page);
      return page.evaluate(() => {
        const i = calls.findIndex((c) => c[0] === 'my_onstatuschange' && c[1] === true);
        const bytes = performance.getEntriesByType('resource')
          .filter((e) => e.name.includes('/client/'))
          .reduce((sum, e) => sum + e.transferSize, 0);
        return { ms: stamps[i] - performance.timeOrigin, bytes };
      });
    };
    await page.goto(`${siteOrigin}/forum/page.php?id=time${i}&name=T`);
    const first = await timing();
    await page.goto(`${siteOrigin}/forum/other.php?id=time${i}&name=T`);
    const repeat = await timing();
    runs.push({ first, repeat });
    await context.close();
  }
  const median = (xs) => xs.sort((a, b) => a - b)[Math.floor(xs.length / 2)];
  const firstMs = median(runs.map((r) => r.first.ms));
  const repeatMs = median(runs.map((r) => r.repeat.ms));
  t.diagnostic(`online after ${firstMs.toFixed(0)} ms (first view), ${repeatMs.toFixed(0)} ms (repeat view), median of 7`);
  t.diagnostic(`client bytes over the network: first view ${runs[0].first.bytes}, repeat view ${runs[0].repeat.bytes}`);
  assert.ok(runs[0].repeat.bytes < runs[0].first.bytes / 4, 'a repeat view comes mostly from the cache');
});

test('a display name with markup shows as text in the demo, and nothing runs', async () => {
  const evil = { id: 'mallory', name: '<img src=x onerror=window.__pwned=1>' };
  const victimContext = await browser.newContext();
  const victim = await victimContext.newPage();
  await victim.goto(`${server.base}/user.html?id=victim&name=Victim&watch=mallory`);
  const attackerContext = await browser.newContext();
  const attacker = await attackerContext.newPage();
  await attacker.goto(`${server.base}/user.html?${new URLSearchParams({ id: evil.id, name: evil.name })}`);

  await attacker.waitForFunction(() => document.getElementById('online').textContent === 'online');
  await victim.waitForFunction(() => document.getElementById('online').textContent === 'online');
  assert.equal(await attacker.textContent('#me'), evil.name);

  await attacker.fill('#callee', 'victim');
  await attacker.click('#callform button[type=submit]');
  await victim.waitForSelector('#incoming:not([hidden])');
  assert.equal(await victim.textContent('#caller'), evil.name);
  await victim.waitForFunction(() => document.querySelector('#users .who'));
  assert.equal(await victim.textContent('#users .who'), `${evil.name} (mallory)`);
  await sleep(300);
  for (const page of [victim, attacker]) {
    assert.equal(await page.locator('img').count(), 0, 'no element was made from the name');
    assert.equal(await page.evaluate(() => window.__pwned), undefined);
  }
  await victimContext.close();
  await attackerContext.close();
});

test('a page from an origin that is not allowed cannot connect', async () => {
  const other = createServer((req, res) => {
    res.writeHead(200, { 'content-type': 'text/html' });
    res.end(sitePage(`${server.base}/client/switchboard.js`, { server: server.base }));
  });
  const port = await freePort();
  await new Promise((resolve) => other.listen(port, '127.0.0.1', resolve));
  // The same page from the allowed origin connects: the bundle itself works.
  const allowed = await sitePageFor({ id: 'eve', name: 'Eve' });
  await online(allowed);
  await allowed.context().close();
  const context = await browser.newContext();
  const page = await context.newPage();
  await page.goto(`http://127.0.0.1:${port}/?id=eve&name=Eve`);
  // The client loaded and tried: the refused upgrade shows as a lost connection.
  await waitCall(page, 'my_onstatusmessage', ([m]) => /connection to the server lost/.test(m));
  await sleep(500);
  assert.equal(await countCalls(page, 'my_onstatuschange', ([on]) => on === true), 0);
  await context.close();
  await new Promise((resolve) => other.close(resolve));
});

test('escaped names: a page that writes names with innerHTML shows markup as text', async () => {
  const evil = '<img src=x onerror="window.__pwned=1">';
  // A legacy page: names go into the document as HTML. One opts in with the script tag's
  // attribute, one with sv_setoption.
  const legacy = (optIn) => `<!doctype html><meta charset="utf-8">
    <script src="/client/switchboard.js" ${optIn === 'attribute' ? 'data-escape-names' : ''}></script>
    <script>
      ${optIn === 'option' ? "sv_setoption('escapeNames', true);" : ''}
      window.calls = [];
      function my_onstatuschange(on) { calls.push(['my_onstatuschange', on]); }
      function my_onincomingcall(name, link) {
        calls.push(['my_onincomingcall', name, link]);
        document.getElementById('who').innerHTML = 'Call from ' + name;
      }
      sv_setuserinfo(new URLSearchParams(location.search).get('id'), 'Victim');
    </script><body><p id="who"></p></body>`;
  const attacker = await openTab(await browser.newContext(), server.base, { id: 'mallory2', name: evil });
  await online(attacker);
  for (const optIn of ['attribute', 'option']) {
    const id = `victim-${optIn}`;
    const context = await browser.newContext();
    const victim = await context.newPage();
    await victim.goto(`${server.base}/healthz?id=${id}`);
    await victim.setContent(legacy(optIn));
    await online(victim);
    await attacker.evaluate((to) => sv_makecall(to), id);
    await waitCall(victim, 'my_onincomingcall');
    await sleep(300);
    assert.equal(await victim.textContent('#who'), `Call from ${evil}`, optIn);
    assert.equal(await victim.locator('img').count(), 0, `${optIn}: no element was made from the name`);
    assert.equal(await victim.evaluate(() => window.__pwned), undefined, optIn);
    await attacker.evaluate(() => sv_clearoutgoingcall());
    await context.close();
  }
  await attacker.context().close();
});
