/**
 * The agent's HTTP/1.1 client to its engine (src/agent/docker/engine-http.ts). The happy paths
 * against a real dockerd are the whole gateway suite (docker-gateway, docker-connect, …), which
 * goes through this client for every non-hijacked call. Here: what a real engine does not send
 * on demand — responses cut at every byte, bodies framed each way, interim answers, kept-alive
 * connections closed under us, and malformed answers — from a raw unix socket server.
 */
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync } from 'node:fs';
import { createServer, type Server, type Socket } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Readable } from 'node:stream';
import { after, test } from 'node:test';
import { EngineHttp, type EngineRequestOptions, type EngineResponse } from '../src/agent/docker/engine-http.ts';

const dir = mkdtempSync(join(tmpdir(), 'dockfleet-engine-http-'));
after(() => rmSync(dir, { recursive: true, force: true }));
let serial = 0;

interface RawServer {
  path: string;
  /** Every byte each connection sent, by connection. */
  received: string[];
  close(): Promise<void>;
}

/** A unix socket server; `onRequest` runs for each request head (and body, when `bodyUntil`
 * says where it ends) on each connection. */
async function rawServer(onRequest: (socket: Socket, request: string, index: number) => void | Promise<void>, bodyUntil: (head: string) => string | number = () => 0): Promise<RawServer> {
  const path = join(dir, `s${serial++}.sock`);
  const received: string[] = [];
  const sockets = new Set<Socket>();
  let requests = 0;
  const server: Server = createServer((socket) => {
    sockets.add(socket);
    const conn = received.push('') - 1;
    let pending = '';
    socket.on('data', async (d: Buffer) => {
      received[conn] += d.toString('latin1');
      pending += d.toString('latin1');
      for (;;) {
        const headEnd = pending.indexOf('\r\n\r\n');
        if (headEnd < 0) return;
        const head = pending.slice(0, headEnd + 4);
        const until = bodyUntil(head);
        let end: number;
        if (typeof until === 'number') end = headEnd + 4 + until;
        else {
          const at = pending.indexOf(until, headEnd + 4);
          if (at < 0) return;
          end = at + until.length;
        }
        if (pending.length < end) return;
        const request = pending.slice(0, end);
        pending = pending.slice(end);
        await onRequest(socket, request, requests++);
      }
    });
    socket.on('error', () => {});
    socket.on('close', () => sockets.delete(socket));
  });
  await new Promise<void>((resolve) => server.listen(path, resolve));
  return {
    path,
    received,
    close: () =>
      new Promise<void>((resolve) => {
        for (const s of sockets) s.destroy();
        server.close(() => resolve());
      }),
  };
}

interface Outcome {
  status?: number;
  headers?: EngineResponse['headers'];
  body?: string;
  error?: string;
}

function call(client: EngineHttp, opts: Partial<EngineRequestOptions> = {}): Promise<Outcome> {
  return new Promise((resolve) => {
    client.request(
      { method: 'GET', path: '/_ping', headers: { host: 'docker' }, body: null, ...opts },
      (res) => {
        const chunks: Buffer[] = [];
        res.on('data', (c: Buffer) => chunks.push(c));
        res.on('end', () => resolve({ status: res.statusCode, headers: res.headers, body: Buffer.concat(chunks).toString('latin1') }));
        res.on('error', (err) => resolve({ status: res.statusCode, error: err.message, body: Buffer.concat(chunks).toString('latin1') }));
      },
      (err) => resolve({ error: err.message }),
    );
  });
}

const sleepTick = (): Promise<void> => new Promise((resolve) => setImmediate(resolve));

test('a chunked answer cut at every byte arrives whole: extensions and trailers skipped, headers as Node gives them', async () => {
  const payload = 'hello, chunked world - with bytes \xff\x00 and more';
  const first = payload.slice(0, 7);
  const rest = payload.slice(7);
  const wire = [
    'HTTP/1.1 200 OK\r\nContent-Type: text/plain\r\nX-Two: a\r\nX-Two: b\r\nSet-Cookie: a=1\r\nSet-Cookie: b=2\r\nTransfer-Encoding: chunked\r\n\r\n',
    `${first.length.toString(16)};ext=1\r\n${first}\r\n`,
    `${rest.length.toString(16).toUpperCase()}\r\n${rest}\r\n`,
    '0\r\nX-Trailer: t\r\n\r\n',
  ].join('');
  const server = await rawServer(async (socket) => {
    for (const byte of Buffer.from(wire, 'latin1')) {
      socket.write(Buffer.from([byte]));
      await sleepTick();
    }
  });
  const client = new EngineHttp(server.path);
  try {
    const out = await call(client);
    assert.equal(out.error, undefined);
    assert.equal(out.status, 200);
    assert.equal(out.body, payload);
    assert.equal(out.headers!['content-type'], 'text/plain');
    assert.equal(out.headers!['x-two'], 'a, b');
    assert.deepEqual(out.headers!['set-cookie'], ['a=1', 'b=2']);
    assert.equal(client.idleCount, 1, 'a complete chunked answer leaves the connection reusable');
  } finally {
    client.close();
    await server.close();
  }
});

test('kept-alive connections are reused; an answer without length ends with the connection and is not reused', async () => {
  const server = await rawServer((socket, request) => {
    if (request.startsWith('GET /close ')) {
      socket.end('HTTP/1.1 200 OK\r\nContent-Type: text/plain\r\n\r\nuntil the end');
    } else if (request.startsWith('HEAD ')) {
      socket.write('HTTP/1.1 200 OK\r\nContent-Length: 1234\r\n\r\n');
    } else if (request.startsWith('DELETE ')) {
      socket.write('HTTP/1.1 204 No Content\r\n\r\n');
    } else {
      socket.write('HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nOK');
    }
  });
  const client = new EngineHttp(server.path);
  try {
    for (let i = 0; i < 3; i++) assert.deepEqual((await call(client)).body, 'OK');
    const head = await call(client, { method: 'HEAD' });
    assert.equal(head.status, 200);
    assert.equal(head.body, '', 'HEAD has no body whatever Content-Length says');
    const deleted = await call(client, { method: 'DELETE', path: '/containers/x' });
    assert.equal(deleted.status, 204);
    assert.equal(server.received.length, 1, 'five calls, one connection');
    assert.equal(client.idleCount, 1);

    const closed = await call(client, { path: '/close' });
    assert.equal(closed.body, 'until the end');
    assert.equal(client.idleCount, 0, 'a connection that ended the body is gone');
    assert.equal((await call(client)).body, 'OK');
    assert.equal(server.received.length, 2);
  } finally {
    client.close();
    await server.close();
  }
});

test('request bodies: a buffer goes with its length, a stream of unknown length goes chunked, one of known length goes raw', async () => {
  const server = await rawServer(
    (socket) => void socket.write('HTTP/1.1 201 Created\r\nContent-Length: 0\r\n\r\n'),
    (head) => (/transfer-encoding: chunked/i.test(head) ? '0\r\n\r\n' : Number(/content-length: (\d+)/i.exec(head)?.[1] ?? 0)),
  );
  const client = new EngineHttp(server.path);
  try {
    assert.equal((await call(client, { method: 'POST', path: '/a', headers: { 'content-type': 'application/json', 'content-length': '999' }, body: Buffer.from('{"x":1}') })).status, 201);
    assert.equal((await call(client, { method: 'POST', path: '/b', headers: {}, body: Readable.from([Buffer.from('abc'), Buffer.from('defgh')]) })).status, 201);
    assert.equal((await call(client, { method: 'PUT', path: '/c', headers: { 'content-length': '4' }, body: Readable.from([Buffer.from('wx'), Buffer.from('yz')]) })).status, 201);
    const wire = server.received.join('');
    assert.match(wire, /^POST \/a HTTP\/1\.1\r\ncontent-type: application\/json\r\ncontent-length: 7\r\n\r\n\{"x":1\}/, "the buffer's own length wins over a stale header");
    assert.ok(wire.includes('POST /b HTTP/1.1\r\ntransfer-encoding: chunked\r\n\r\n3\r\nabc\r\n5\r\ndefgh\r\n0\r\n\r\n'), wire);
    assert.ok(wire.includes('PUT /c HTTP/1.1\r\ncontent-length: 4\r\n\r\nwxyz'), wire);
    assert.equal(server.received.length, 1, 'all three on one kept-alive connection');
  } finally {
    client.close();
    await server.close();
  }
});

test('an interim 100 Continue is skipped; 101 on an ordinary call is an error', async () => {
  const server = await rawServer((socket, request) => {
    if (request.startsWith('GET /switch ')) socket.write('HTTP/1.1 101 Switching Protocols\r\nUpgrade: tcp\r\n\r\n');
    else socket.write('HTTP/1.1 100 Continue\r\n\r\nHTTP/1.1 200 OK\r\nContent-Length: 5\r\n\r\nfinal');
  });
  const client = new EngineHttp(server.path);
  try {
    assert.equal((await call(client)).body, 'final');
    assert.match((await call(client, { path: '/switch' })).error ?? '', /switched protocols on a call that did not ask to/);
  } finally {
    client.close();
    await server.close();
  }
});

test('malformed answers are clear errors and the connection is dropped, not reused', async () => {
  const answers: Record<string, string> = {
    '/status': 'HTTP/1.1 two hundred\r\n\r\n',
    '/header': 'HTTP/1.1 200 OK\r\nno colon here\r\n\r\n',
    '/length': 'HTTP/1.1 200 OK\r\nContent-Length: 12x\r\n\r\n',
    '/chunk-size': 'HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n3\r\nabc\r\nzz\r\n',
    '/chunk-overrun': 'HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n3\r\nabcdef\r\n0\r\n\r\n',
    '/chunk-line': `HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n1;${'x'.repeat(2000)}\r\n`,
    '/head': `HTTP/1.1 200 OK\r\nX-Big: ${'y'.repeat(70 * 1024)}\r\n\r\n`,
    '/extra': 'HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nOKsurprise',
    '/cut': 'HTTP/1.1 200 OK\r\nContent-Length: 100\r\n\r\nonly this much',
  };
  const server = await rawServer((socket, request) => {
    const path = request.split(' ')[1]!;
    const answer = answers[path] ?? 'HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nOK';
    if (path === '/cut') socket.end(answer);
    else socket.write(answer);
  });
  const client = new EngineHttp(server.path);
  const expected: Record<string, RegExp> = {
    '/status': /malformed status line/,
    '/header': /malformed header line/,
    '/length': /invalid Content-Length/,
    '/chunk-size': /malformed chunk size/,
    '/chunk-overrun': /chunk longer than its size/,
    '/chunk-line': /over-long chunk line/,
    '/head': /response head is over 65536 bytes/,
    '/cut': /closed the connection mid-response/,
  };
  try {
    for (const [path, re] of Object.entries(expected)) {
      const out = await call(client, { path });
      assert.match(out.error ?? '(no error)', re, `${path}: ${JSON.stringify(out).slice(0, 200)}`);
      assert.equal(client.idleCount, 0, `${path}: the broken connection is not kept`);
    }
    const extra = await call(client, { path: '/extra' });
    assert.equal(extra.body, 'OK', 'the answer itself was whole');
    assert.equal(client.idleCount, 0, 'but a connection with bytes past the answer is not kept');
    assert.equal((await call(client)).body, 'OK', 'the client still works afterwards');
  } finally {
    client.close();
    await server.close();
  }
});

test('a kept-alive connection the engine closed is retried once for a GET, never for a POST', async () => {
  let closeNext = false;
  const server = await rawServer(
    (socket) => {
      if (closeNext) {
        closeNext = false;
        socket.destroy();
        return;
      }
      socket.write('HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nOK');
    },
    (head) => Number(/content-length: (\d+)/i.exec(head)?.[1] ?? 0),
  );
  const client = new EngineHttp(server.path);
  try {
    assert.equal((await call(client)).body, 'OK');
    closeNext = true;
    assert.equal((await call(client)).body, 'OK', 'the GET went again on a new connection');
    assert.equal(server.received.length, 2);
    closeNext = true;
    const post = await call(client, { method: 'POST', path: '/containers/create', headers: { 'content-type': 'application/json' }, body: Buffer.from('{}') });
    assert.match(post.error ?? '', /closed the connection without answering/);
    assert.equal(server.received.length, 2, 'the POST was not sent twice');
  } finally {
    client.close();
    await server.close();
  }
});

test('header and path injection is refused before a byte is sent; an absent engine is a clear error', async () => {
  const server = await rawServer((socket) => void socket.write('HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nOK'));
  const client = new EngineHttp(server.path);
  try {
    assert.match((await call(client, { headers: { 'x-evil': 'a\r\nX-Injected: 1' } })).error ?? '', /invalid value for header x-evil/);
    assert.match((await call(client, { headers: { 'bad name': 'v' } })).error ?? '', /invalid header name/);
    assert.match((await call(client, { path: '/_ping HTTP/1.1\r\nX: y' })).error ?? '', /invalid request path/);
    assert.match((await call(client, { method: 'GET /x' })).error ?? '', /invalid method/);
    assert.equal(server.received.join(''), '', 'nothing reached the engine');
  } finally {
    client.close();
    await server.close();
  }
  const gone = new EngineHttp(join(dir, 'no-such.sock'));
  assert.match((await call(gone)).error ?? '', /could not reach the Docker engine: connect ENOENT/);
});

test('aborting mid-body drops the connection; the engine sees it close', async () => {
  let engineSawClose!: () => void;
  const closed = new Promise<void>((resolve) => (engineSawClose = resolve));
  const server = await rawServer((socket) => {
    socket.write('HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n5\r\nfirst\r\n');
    socket.on('close', engineSawClose);
  });
  const client = new EngineHttp(server.path);
  try {
    const firstChunk = await new Promise<string>((resolve, reject) => {
      const abort = client.request(
        { method: 'GET', path: '/containers/x/logs?follow=1', headers: {}, body: null },
        (res) => {
          res.once('data', (c: Buffer) => {
            abort();
            resolve(c.toString());
          });
        },
        reject,
      );
    });
    assert.equal(firstChunk, 'first');
    await closed;
    assert.equal(client.idleCount, 0);
  } finally {
    client.close();
    await server.close();
  }
});
