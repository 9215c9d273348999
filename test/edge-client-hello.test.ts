/** The ClientHello reader the edge uses to spot ACME's TLS-ALPN-01 validators before TLS starts:
 * real ClientHellos captured on 127.0.0.1 from Node, openssl s_client, curl and chromium give
 * their server name and ALPN list, read whole, a byte at a time, or re-split into many records;
 * malformed and hostile bytes (not TLS, bad lengths, duplicate extensions, oversize, random
 * mutations of a real hello) are refused or asked more of, never thrown on. */
import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import net from 'node:net';
import tls from 'node:tls';
import { after, before, test } from 'node:test';
import { chromium } from 'playwright-core';
import { MAX_CLIENT_HELLO, readClientHello, type HelloReading } from '../src/hub/edge/certs/client-hello.ts';
import { CHROMIUM } from './support/browser.ts';

/** A TCP server that keeps the first bytes of each connection until they hold a whole ClientHello. */
let server: net.Server;
let port: number;
const captured: Array<(hello: Buffer) => void> = [];

before(async () => {
  server = net.createServer((socket) => {
    let bytes = Buffer.alloc(0);
    socket.on('error', () => {});
    socket.on('data', (chunk: Buffer) => {
      bytes = Buffer.concat([bytes, chunk]);
      if (readClientHello(bytes).kind === 'more') return;
      captured.shift()?.(bytes);
      socket.destroy();
    });
  });
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  port = (server.address() as net.AddressInfo).port;
});
after(() => {
  server?.close();
});

/** The ClientHello bytes that `client()` sends to the capture server. */
async function capture(client: () => Promise<unknown>): Promise<Buffer> {
  const hello = new Promise<Buffer>((resolve, reject) => {
    captured.push(resolve);
    setTimeout(() => reject(new Error('no ClientHello within 20 s')), 20_000).unref();
  });
  void client().catch(() => {});
  return hello;
}

function run(cmd: string, args: string[]): Promise<void> {
  return new Promise((resolve) => {
    execFile(cmd, args, { timeout: 20_000 }, () => resolve());
  });
}

const nodeClient = (alpn: string[]) => () =>
  new Promise((resolve) => {
    const s = tls.connect({ host: '127.0.0.1', port, servername: 'hello.test', ALPNProtocols: alpn, rejectUnauthorized: false });
    s.on('error', resolve);
    s.on('close', resolve);
  });

function assertHello(reading: HelloReading, serverName: string | null, alpn: string[]): void {
  assert.equal(reading.kind, 'hello', JSON.stringify(reading));
  if (reading.kind !== 'hello') return;
  assert.equal(reading.serverName, serverName);
  assert.deepEqual(reading.alpn, alpn);
}

const real: Record<string, { bytes: Buffer; serverName: string; alpn: string[] }> = {};

test('real ClientHellos: Node (h2, http/1.1), Node and openssl offering acme-tls/1, curl, chromium', async () => {
  real.nodeH2 = { bytes: await capture(nodeClient(['h2', 'http/1.1'])), serverName: 'hello.test', alpn: ['h2', 'http/1.1'] };
  real.nodeAcme = { bytes: await capture(nodeClient(['acme-tls/1'])), serverName: 'hello.test', alpn: ['acme-tls/1'] };
  real.openssl = {
    bytes: await capture(() => run('openssl', ['s_client', '-connect', `127.0.0.1:${port}`, '-servername', 'acme.hello.test', '-alpn', 'acme-tls/1'])),
    serverName: 'acme.hello.test',
    alpn: ['acme-tls/1'],
  };
  real.curl = {
    bytes: await capture(() => run('curl', ['-sk', '--http2', '--max-time', '10', '--resolve', `curl.hello.test:${port}:127.0.0.1`, `https://curl.hello.test:${port}/`])),
    serverName: 'curl.hello.test',
    alpn: ['h2', 'http/1.1'],
  };
  const browser = await chromium.launch({ executablePath: CHROMIUM, args: ['--no-sandbox', '--disable-gpu', '--disable-dev-shm-usage', '--host-resolver-rules=MAP browser.hello.test 127.0.0.1'] });
  try {
    const page = await browser.newPage({ ignoreHTTPSErrors: true });
    real.chromium = { bytes: await capture(() => page.goto(`https://browser.hello.test:${port}/`, { timeout: 15_000 })), serverName: 'browser.hello.test', alpn: ['h2', 'http/1.1'] };
  } finally {
    await browser.close();
  }
  for (const [client, hello] of Object.entries(real)) {
    const reading = readClientHello(hello.bytes);
    assert.equal(reading.kind, 'hello', `${client}: ${JSON.stringify(reading)}`);
    assertHello(reading, hello.serverName, hello.alpn);
  }
});

test('a ClientHello read a byte at a time is `more` until its last byte', () => {
  const { bytes } = real.chromium ?? real.nodeH2!;
  for (let n = 0; n < bytes.length; n++) assert.equal(readClientHello(bytes.subarray(0, n)).kind, 'more', `at ${n} of ${bytes.length}`);
  assertHello(readClientHello(bytes), (real.chromium ?? real.nodeH2!).serverName, ['h2', 'http/1.1']);
});

/** The same handshake message, re-split into records of `size` bytes (allowed by RFC 8446 5.1). */
function resplit(bytes: Buffer, size: number): Buffer {
  const message = bytes.subarray(5, 5 + bytes.readUInt16BE(3));
  const records: Buffer[] = [];
  for (let at = 0; at < message.length; at += size) {
    const part = message.subarray(at, at + size);
    records.push(Buffer.from([22, 3, 1, part.length >> 8, part.length & 0xff]), part);
  }
  return Buffer.concat(records);
}

test('a ClientHello split over many records reads the same', () => {
  for (const { bytes, serverName, alpn } of Object.values(real)) {
    for (const size of [1, 7, 100, 512]) assertHello(readClientHello(resplit(bytes, size)), serverName, alpn);
  }
});

/** A minimal ClientHello with the given extensions (type, data). */
function hello(extensions: Array<[number, Buffer]>, opts: { recordType?: number; handshakeType?: number } = {}): Buffer {
  const ext = Buffer.concat(extensions.map(([type, data]) => Buffer.concat([u16(type), u16(data.length), data])));
  const body = Buffer.concat([Buffer.from([3, 3]), Buffer.alloc(32), Buffer.from([0]), u16(2), Buffer.from([0x13, 0x01]), Buffer.from([1, 0]), u16(ext.length), ext]);
  const message = Buffer.concat([Buffer.from([opts.handshakeType ?? 1, 0, body.length >> 8, body.length & 0xff]), body]);
  return Buffer.concat([Buffer.from([opts.recordType ?? 22, 3, 1]), u16(message.length), message]);
}
function u16(n: number): Buffer {
  const b = Buffer.alloc(2);
  b.writeUInt16BE(n);
  return b;
}
function sni(...names: string[]): Buffer {
  const list = Buffer.concat(names.map((n) => Buffer.concat([Buffer.from([0]), u16(n.length), Buffer.from(n)])));
  return Buffer.concat([u16(list.length), list]);
}
function alpn(...protocols: string[]): Buffer {
  const list = Buffer.concat(protocols.map((p) => Buffer.concat([Buffer.from([p.length]), Buffer.from(p)])));
  return Buffer.concat([u16(list.length), list]);
}

test('malformed input is refused with a reason', () => {
  const cases: Array<[string, Buffer, RegExp]> = [
    ['plain HTTP', Buffer.from('GET / HTTP/1.1\r\nHost: x\r\n\r\n'), /not a TLS handshake record/],
    ['one byte of HTTP', Buffer.from('G'), /not a TLS handshake record/],
    ['an alert record', hello([], { recordType: 21 }), /not a TLS handshake record/],
    ['SSL 2 / unknown version', Buffer.from([22, 2, 0, 0, 5, 1, 0, 0, 1, 0]), /unknown record version/],
    ['a zero-length record', Buffer.from([22, 3, 1, 0, 0]), /bad record length/],
    ['an oversize record', Buffer.from([22, 3, 1, 0x40, 0x01]), /bad record length/],
    ['a ServerHello', hello([], { handshakeType: 2 }), /not a ClientHello/],
    ['a ClientHello over the limit', Buffer.from([22, 3, 1, 0, 4, 1, 0x01, 0x00, 0x00]), /too large/],
    [
      'two server_name extensions',
      hello([
        [0, sni('a.test')],
        [0, sni('b.test')],
      ]),
      /twice/,
    ],
    ['two host names', hello([[0, sni('a.test', 'b.test')]]), /two host names/],
    ['a host name with a space', hello([[0, sni('a .test')]]), /bad host name/],
    ['an empty ALPN protocol', hello([[16, alpn('')]]), /bad ALPN protocol name/],
    ['an empty ALPN list', hello([[16, u16(0)]]), /bad ALPN list/],
  ];
  for (const [what, bytes, reason] of cases) {
    const reading = readClientHello(bytes);
    assert.equal(reading.kind, 'malformed', `${what}: ${JSON.stringify(reading)}`);
    if (reading.kind === 'malformed') assert.match(reading.reason, reason, what);
  }
  // Lengths that point past their container, at every level.
  const good = hello([
    [0, sni('a.test')],
    [16, alpn('acme-tls/1')],
  ]);
  assertHello(readClientHello(good), 'a.test', ['acme-tls/1']);
  // Offsets in `good`: the extensions' length (50), server_name's (54), its list's (56), the
  // name's (59), ALPN's (69), its list's (71).
  assert.equal(good.length, 84);
  for (const at of [50, 54, 56, 59, 69, 71]) {
    const broken = Buffer.from(good);
    broken.writeUInt16BE(0xfff0, at);
    assert.notEqual(readClientHello(broken).kind, 'hello', `a length at ${at} that overruns`);
  }
  // Bytes after the ClientHello in the same record.
  const padded = Buffer.concat([good, Buffer.from([0])]);
  padded.writeUInt16BE(good.readUInt16BE(3) + 1, 3);
  assert.match(JSON.stringify(readClientHello(padded)), /bytes after the ClientHello/);
  assert.ok(MAX_CLIENT_HELLO >= 16 * 1024);
});

test('random mutations of real ClientHellos and random bytes never throw', () => {
  const samples = Object.values(real).map((r) => r.bytes);
  let hellos = 0;
  for (let i = 0; i < 20_000; i++) {
    const base = Buffer.from(samples[i % samples.length]!);
    const flips = 1 + (i % 4);
    for (let f = 0; f < flips; f++) base[Math.floor(Math.random() * base.length)] = Math.floor(Math.random() * 256);
    const cut = i % 3 === 0 ? base.subarray(0, Math.floor(Math.random() * base.length)) : base;
    const reading = readClientHello(cut);
    assert.ok(['more', 'hello', 'malformed'].includes(reading.kind));
    if (reading.kind === 'hello') hellos++;
  }
  for (let i = 0; i < 5_000; i++) {
    const bytes = randomBytes(1 + (i % 300));
    if (i % 2 === 0) {
      bytes[0] = 22;
      bytes[1] = 3;
      bytes[2] = 1;
    }
    assert.ok(['more', 'hello', 'malformed'].includes(readClientHello(bytes).kind));
  }
  assert.ok(hellos > 0, 'some mutations (inside the random field, say) still read as hellos');
});
