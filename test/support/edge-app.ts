/** The app the edge tests publish: one container of the node image (node-image.ts) serving what
 * busybox cannot — HTTP/1.1 on 8080 and 8081, HTTPS on 8443 (a certificate the test makes), h2c
 * on 9090 with a gRPC-style bidirectional echo — and telling the test what it saw (headers,
 * trailers, how many connections it was opened). */
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { loadOrCreateHubPki } from '../../src/hub/pki.ts';
import { SecretBox } from '../../src/hub/secret-box.ts';
import { runContainer, type TestEngine } from './engines.ts';
import { nodeImage } from './node-image.ts';

export const APP_PORTS = { http: 8080, gated: 8081, https: 8443, h2c: 9090 } as const;

/** The app (ES module, run by the container's node). Every endpoint answers JSON or bytes. */
const SERVER = String.raw`
import { createHash } from 'node:crypto';
import fs from 'node:fs';
import http from 'node:http';
import http2 from 'node:http2';
import https from 'node:https';

const MB = 1024 * 1024;
// The download pattern: a seeded 1 MiB block, each copy stamped with its index.
const block = Buffer.alloc(MB);
for (let i = 0, h = Buffer.from('dockfleet'); i < MB; i += 32) { h = createHash('sha256').update(h).digest(); h.copy(block, i); }
const chunk = (i) => { const c = Buffer.from(block); c.writeUInt32BE(i, 0); return c; };
const shas = new Map();
const bigSha = (mb) => {
  if (!shas.has(mb)) { const h = createHash('sha256'); for (let i = 0; i < mb; i++) h.update(chunk(i)); shas.set(mb, h.digest('hex')); }
  return shas.get(mb);
};

function counted(server) {
  const seen = { opened: 0, open: 0, requests: 0 };
  server.on('connection', (s) => { seen.opened++; seen.open++; s.on('close', () => seen.open--); });
  server.on('request', () => seen.requests++);
  return seen;
}

function handler(seen) {
  return (req, res) => {
    const url = new URL(req.url, 'http://app');
    const json = (value) => { res.setHeader('content-type', 'application/json'); res.end(JSON.stringify(value)); };
    if (url.pathname === '/connections') return json(seen);
    if (url.pathname === '/cookies') {
      res.setHeader('set-cookie', ['df_edge=from-the-app; Path=/', 'app=1; Path=/']);
      return json({ cookies: true });
    }
    if (url.pathname === '/big') {
      const mb = Number(url.searchParams.get('mb') ?? '1');
      res.writeHead(200, { 'content-type': 'application/octet-stream', 'content-length': mb * MB });
      let i = 0;
      const more = () => { while (i < mb) { if (!res.write(chunk(i++))) return void res.once('drain', more); } res.end(); };
      return more();
    }
    if (url.pathname === '/big.sha') return json({ sha256: bigSha(Number(url.searchParams.get('mb') ?? '1')) });
    if (url.pathname === '/wait') return void setTimeout(() => json({ waited: true }), Number(url.searchParams.get('ms') ?? '0'));
    const hash = createHash('sha256');
    let bytes = 0;
    req.on('data', (c) => { bytes += c.length; hash.update(c); });
    req.on('end', () => {
      const seenReq = { method: req.method, url: req.url, headers: req.headers, trailers: req.trailers, bytes, sha256: hash.digest('hex'),
        servername: req.socket.servername ?? null, encrypted: req.socket.encrypted === true };
      if (url.pathname === '/trailers') {
        res.writeHead(200, { 'content-type': 'application/json', trailer: 'x-app-trailer' });
        res.write(JSON.stringify(seenReq));
        res.addTrailers({ 'x-app-trailer': 'done' });
        return res.end();
      }
      json(seenReq);
    });
  };
}

// A WebSocket-like upgrade: 101, then a line with the request head as JSON, then every byte echoed.
function echoUpgrades(server) {
  server.on('upgrade', (req, socket, head) => {
    socket.write('HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n\r\n');
    socket.write(JSON.stringify({ url: req.url, headers: req.headers }) + '\n');
    if (head.length) socket.write(head);
    socket.pipe(socket);
  });
}

for (const port of [8080, 8081]) {
  const server = http.createServer({ keepAliveTimeout: 60000 });
  server.on('request', handler(counted(server)));
  echoUpgrades(server);
  server.listen(port);
}
const tlsServer = https.createServer({ cert: fs.readFileSync('/app/tls.crt'), key: fs.readFileSync('/app/tls.key'), keepAliveTimeout: 60000 });
tlsServer.on('request', handler(counted(tlsServer)));
echoUpgrades(tlsServer);
tlsServer.listen(8443);

// h2c: gRPC-style framing (1 byte flag, 4 bytes length, message); each message is echoed back
// as "echo:" + message, and the trailers carry grpc-status with what the request looked like.
const h2 = http2.createServer();
const h2seen = { sessions: 0, streams: 0 };
h2.on('session', () => h2seen.sessions++);
h2.on('stream', (stream, headers) => {
  h2seen.streams++;
  if (headers[':path'] === '/sessions') {
    stream.respond({ ':status': 200, 'content-type': 'application/json' });
    return stream.end(JSON.stringify(h2seen));
  }
  if (headers[':path'] !== '/echo.Echo/Chat') {
    stream.respond({ ':status': 200, 'content-type': 'application/json' });
    return stream.end(JSON.stringify({ path: headers[':path'], authority: headers[':authority'], headers }));
  }
  stream.respond({ ':status': 200, 'content-type': 'application/grpc' }, { waitForTrailers: true });
  let pending = Buffer.alloc(0);
  let messages = 0;
  let clientTrailers = {};
  stream.on('trailers', (t) => { clientTrailers = t; });
  stream.on('data', (c) => {
    pending = Buffer.concat([pending, c]);
    while (pending.length >= 5 && pending.length >= 5 + pending.readUInt32BE(1)) {
      const size = pending.readUInt32BE(1);
      const message = Buffer.concat([Buffer.from('echo:'), pending.subarray(5, 5 + size)]);
      pending = pending.subarray(5 + size);
      const frame = Buffer.alloc(5 + message.length);
      frame.writeUInt32BE(message.length, 1);
      message.copy(frame, 5);
      stream.write(frame);
      messages++;
    }
  });
  stream.on('end', () => stream.end());
  stream.on('wantTrailers', () => stream.sendTrailers({
    'grpc-status': '0', 'grpc-message': 'done', 'x-messages': String(messages),
    'x-saw-te': String(headers.te ?? ''), 'x-client-trailer': String(clientTrailers['x-client-trailer'] ?? ''),
  }));
});
h2.listen(9090);
console.log('edge app listening');
`;

export interface EdgeApp {
  id: string;
  dir: string;
  stop(): Promise<void>;
}

/** Starts the app with `labels`, exposing all its ports; resolves once the container runs (its servers follow within ~100 ms). */
export async function startEdgeApp(engine: TestEngine, name: string, labels: Record<string, string>): Promise<EdgeApp> {
  const dir = await mkdtemp(join(tmpdir(), 'dockfleet-edge-app-'));
  const tls = await loadOrCreateHubPki(join(dir, 'ca'), { hosts: ['tls.test'], secrets: new SecretBox(Buffer.alloc(32, 1)) });
  await writeFile(join(dir, 'server.mjs'), SERVER);
  await writeFile(join(dir, 'tls.crt'), tls.serverCertPem);
  await writeFile(join(dir, 'tls.key'), tls.serverKeyPem);
  const id = await runContainer(engine, {
    name,
    image: await nodeImage(engine),
    cmd: ['node', '/app/server.mjs'],
    labels,
    config: { ExposedPorts: Object.fromEntries(Object.values(APP_PORTS).map((p) => [`${p}/tcp`, {}])) },
    hostConfig: { Binds: [`${dir}:/app:ro`] },
  });
  return { id, dir, stop: () => rm(dir, { recursive: true, force: true }) };
}
