// The UI bundle and its handler, in-process (no hub, no sockets but a local HTTP server).
// Run: node --import tsx --test src/hub/ui/ui-assets.test.ts
import assert from 'node:assert/strict';
import http from 'node:http';
import type { AddressInfo } from 'node:net';
import { after, before, test } from 'node:test';
import zlib from 'node:zlib';
import { UI_CSP, buildUi, createUiHandler, firstLoadBytes, firstLoadJsBytes, type UiAssets } from '../src/hub/ui/ui-assets.ts';

let assets: UiAssets;
let server: http.Server;
let base: string;

before(async () => {
  assets = await buildUi();
  const ui = createUiHandler(assets);
  server = http.createServer((req, res) => {
    if (!ui(req, res)) res.writeHead(418, { 'x-not-ui': '1' }).end();
  });
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  base = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
});

after(() => new Promise<void>((r) => server.close(() => r())));

interface Got {
  status: number;
  headers: http.IncomingHttpHeaders;
  body: Buffer;
}

function get(path: string, headers: Record<string, string> = {}, method = 'GET'): Promise<Got> {
  return new Promise((resolve, reject) => {
    const req = http.request(`${base}${path}`, { method, headers }, (res) => {
      const chunks: Buffer[] = [];
      res.on('data', (c: Buffer) => chunks.push(c));
      res.on('end', () => resolve({ status: res.statusCode ?? 0, headers: res.headers, body: Buffer.concat(chunks) }));
    });
    req.on('error', reject);
    req.end();
  });
}

test('builds quickly, with hashed names, and a small first load', () => {
  assert.ok(assets.buildMs < 5000, `buildUi took ${assets.buildMs} ms`);
  assert.match(assets.entry, /^\/assets\/main-[A-Z0-9]+\.js$/);
  const bytes = firstLoadBytes(assets);
  // Issue 12's budget: ≤ 60 KB of gzipped JavaScript before the first screen (pages off it are lazy).
  assert.ok(firstLoadJsBytes(assets) <= 60 * 1024, `first-load JS is ${firstLoadJsBytes(assets)} B gzipped, over 61,440 B`);
  assert.ok(bytes > 10_000 && bytes <= 320 * 1024, `first load is ${bytes} B gzipped`);
  assert.ok(
    assets.firstLoad.some((p) => p.endsWith('.css')),
    'the stylesheet loads first',
  );
});

test('xterm.js is a lazy chunk, not part of the first load', () => {
  const first = assets.firstLoad
    .filter((p) => p.endsWith('.js'))
    .map((p) => assets.assets.get(p)!.body.toString())
    .join('\n');
  assert.ok(!first.includes('xterm-helper-textarea'), 'xterm code is in the first load');
  const lazy = [...assets.assets.values()].filter((a) => a.path.endsWith('.js') && !assets.firstLoad.includes(a.path));
  assert.ok(
    lazy.some((a) => a.body.toString().includes('xterm-helper-textarea')),
    'no lazy chunk holds xterm',
  );
});

/** The JavaScript of the first load, and of every chunk loaded only later. */
function jsSplit(): { first: string; lazy: { path: string; body: string }[] } {
  const first = assets.firstLoad
    .filter((p) => p.endsWith('.js'))
    .map((p) => assets.assets.get(p)!.body.toString())
    .join('\n');
  const lazy = [...assets.assets.values()].filter((a) => a.path.endsWith('.js') && !assets.firstLoad.includes(a.path)).map((a) => ({ path: a.path, body: a.body.toString() }));
  return { first, lazy };
}

test('pages off the first screen are lazy chunks; the landing pages are not', async () => {
  const { first, lazy } = jsSplit();
  // A string only the Alerts page holds (its receivers card), and one only the People page holds.
  for (const [page, unique] of [
    ['AlertsPage', 'retried with backoff until the receiver answers 2xx'],
    ['PeoplePage', 'Loading grants'],
    ['AuditPage', 'Loading the audit log'],
  ] as const) {
    assert.ok(!first.includes(unique), `${page}'s code is in the first load`);
    assert.ok(
      lazy.some((c) => c.body.includes(unique)),
      `no lazy chunk holds ${page}`,
    );
  }
  // Nodes and Containers are the landing pages: their code comes with the first load.
  assert.ok(first.includes('Loading nodes'), 'the Nodes page is not in the first load');
  // index.html preloads only first-load files, never a lazy chunk.
  const html = (await get('/')).body.toString();
  const preloaded = [...html.matchAll(/rel="modulepreload" href="([^"]+)"/g)].map((m) => m[1]!);
  for (const p of preloaded) assert.ok(assets.firstLoad.includes(p), `${p} is preloaded but not in the first load`);
  for (const c of lazy) assert.ok(!html.includes(c.path), `${c.path} (lazy) is named in index.html`);
});

test('index.html and client routes: SPA fallback with CSP and no-cache', async () => {
  for (const path of ['/', '/nodes', '/containers/alpha/abc123/logs', '/nodes/n1/volumes/my.vol/files?path=a%2Fb', '/account']) {
    const r = await get(path);
    assert.equal(r.status, 200, path);
    assert.equal(r.headers['content-type'], 'text/html; charset=utf-8');
    assert.equal(r.headers['cache-control'], 'no-cache');
    assert.equal(r.headers['content-security-policy'], UI_CSP);
    assert.equal(r.headers['x-content-type-options'], 'nosniff');
    assert.match(r.body.toString(), new RegExp(`<script type="module" src="${assets.entry}"></script>`));
  }
  assert.equal(UI_CSP, "default-src 'self'; img-src 'self' data:; style-src 'self' 'unsafe-inline'; connect-src 'self'; frame-ancestors 'none'");
});

test('leaves the API, Docker, gateway, health and other methods alone', async () => {
  for (const path of ['/api/v1/nodes', '/api', '/api?x=1', '/docker/nodes/a/_ping', '/docker', '/gateway/v1/agent', '/healthz', '/healthz?x']) {
    const r = await get(path);
    assert.equal(r.status, 418, path);
  }
  assert.equal((await get('/', {}, 'POST')).status, 418);
  assert.equal((await get('/assets/x.js', {}, 'DELETE')).status, 418);
  // A path that merely starts with those words is a client route.
  assert.equal((await get('/apis')).status, 200);
});

test('assets: immutable, compressed as accepted, ETag and 304, HEAD', async () => {
  const path = assets.entry;
  const plain = await get(path);
  assert.equal(plain.status, 200);
  assert.equal(plain.headers['cache-control'], 'public, max-age=31536000, immutable');
  assert.equal(plain.headers['content-type'], 'text/javascript; charset=utf-8');
  assert.equal(plain.headers['content-encoding'], undefined);
  assert.equal(plain.headers.vary, 'Accept-Encoding');

  const br = await get(path, { 'accept-encoding': 'gzip, deflate, br' });
  assert.equal(br.headers['content-encoding'], 'br');
  assert.deepEqual(zlib.brotliDecompressSync(br.body), plain.body);

  const gz = await get(path, { 'accept-encoding': 'gzip, br;q=0' });
  assert.equal(gz.headers['content-encoding'], 'gzip');
  assert.deepEqual(zlib.gunzipSync(gz.body), plain.body);
  assert.equal(Number(gz.headers['content-length']), gz.body.length);

  const none = await get(path, { 'accept-encoding': 'identity' });
  assert.equal(none.headers['content-encoding'], undefined);

  assert.notEqual(br.headers.etag, gz.headers.etag);
  const again = await get(path, { 'accept-encoding': 'gzip', 'if-none-match': gz.headers.etag! });
  assert.equal(again.status, 304);
  assert.equal(again.body.length, 0);

  const head = await get(path, { 'accept-encoding': 'br' }, 'HEAD');
  assert.equal(head.status, 200);
  assert.equal(head.body.length, 0);
  assert.equal(Number(head.headers['content-length']), br.body.length);

  const missing = await get('/assets/nope-12345678.js');
  assert.equal(missing.status, 404);
});

test('every asset the index references exists', async () => {
  const html = (await get('/')).body.toString();
  const refs = [...html.matchAll(/(?:src|href)="(\/assets\/[^"]+)"/g)].map((m) => m[1]!);
  assert.ok(refs.length >= 2);
  for (const ref of refs) assert.equal((await get(ref)).status, 200, ref);
});
