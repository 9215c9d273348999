/** Certificates from ACME for routes, end to end against Debian's pebble: a labelled container
 * on a private engine is served at its hostname on the edge port with a pebble-issued
 * certificate that a client trusting only pebble's root accepts — once by HTTP-01 (the hub has
 * `--edge-http`), once by TLS-ALPN-01 (it has not). The certificate's key is sealed in the
 * store, a restarted hub serves the same certificate without ordering, early renewal swaps it
 * without a gap, and when pebble refuses or cannot be reached the host says why while the old
 * certificate is still served, until a retry after recovery succeeds. */
import assert from 'node:assert/strict';
import 'reflect-metadata';
import * as x509 from '@peculiar/x509';
import { X509Certificate, createHash, createPrivateKey } from 'node:crypto';
import { mkdtemp, readFile, readdir, rm, writeFile } from 'node:fs/promises';
import net from 'node:net';
import https from 'node:https';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import tls from 'node:tls';
import { after, before, describe, test } from 'node:test';
import { hubConfigFrom } from '../src/hub/config.ts';
import { runHub, type RunningHub } from '../src/hub/run-hub.ts';
import { pino } from 'pino';
import { silentLogger } from '../src/lib/logger.ts';
import { AcmeFailure } from '../src/hub/edge/acme/acme-failure.ts';
import { alpnChallengeCertificate } from '../src/hub/edge/acme/acme-material.ts';
import { needsOrder, retryDelayMs, tuningFrom, type AcmeTuning } from '../src/hub/edge/acme/acme-schedule.ts';
import { startTestAgent, type TestAgent } from './support/agent-fixture.ts';
import { runContainer, startEngines, stopEngines, type TestEngine } from './support/engines.ts';
import { waitFor } from './support/hub-fixture.ts';
import { startPebble, pebbleMissing, type Pebble } from './support/pebble.ts';
import { freePort } from './support/processes.ts';

const skip = pebbleMissing() ?? false;
const WEB = 'web.example.com';
const OTHER = 'other.example.com';
/** Quick retries, so recovery shows within a test's patience. */
const TUNING: Partial<AcmeTuning> = { retryFirstMs: 300, retryMaxMs: 1_000, checkEveryMs: 60_000 };

const hubLog: string[] = [];
let engine: TestEngine;
let pebble: Pebble;
let dir: string;
const ports = { http01Hub: 0, http01Edge: 0, http01Http: 0, alpnHub: 0, alpnEdge: 0 };

interface AcmeHub {
  running: RunningHub;
  agent: TestAgent;
  dataDir: string;
  api(method: string, path: string, body?: unknown): Promise<{ status: number; json: any }>;
  close(): Promise<void>;
}

/** A hub with an edge and ACME on fixed ports and DIR, with its own in-process agent on the test engine. */
async function startAcmeHub(name: string, opts: { hubPort: number; edgePort: number; httpPort: number | null; email?: string; tuning?: Partial<AcmeTuning> }): Promise<AcmeHub> {
  const dataDir = join(dir, name);
  const config = hubConfigFrom({
    data: dataDir,
    listen: `127.0.0.1:${opts.hubPort}`,
    'edge-listen': `127.0.0.1:${opts.edgePort}`,
    ...(opts.httpPort === null ? {} : { 'edge-http': `127.0.0.1:${opts.httpPort}` }),
    'acme-directory': pebble.directoryUrl,
    'acme-email': opts.email ?? 'ops@example.com',
    'acme-ca': pebble.caFile,
  });
  // The hub's log lines are kept: what ACME logs is checked for keys and tokens.
  const log = pino({ level: 'info' }, { write: (line: string) => void hubLog.push(line) });
  const running = await runHub(config, log, { acmeTuning: { ...TUNING, ...opts.tuning } });
  const token = (await readFile(join(dataDir, 'admin.token'), 'utf8')).trim();
  const client = new https.Agent({ ca: running.caPem, keepAlive: false });
  const api: AcmeHub['api'] = (method, path, body) =>
    new Promise((resolve, reject) => {
      const req = https.request(new URL(path, running.url), { method, agent: client, headers: { authorization: `Bearer ${token}`, 'content-type': 'application/json' } }, (res) => {
        let text = '';
        res.on('data', (c: Buffer) => (text += c.toString()));
        res.on('end', () => resolve({ status: res.statusCode ?? 0, json: text === '' ? null : JSON.parse(text) }));
      });
      req.on('error', reject);
      req.end(body === undefined ? undefined : JSON.stringify(body));
    });
  const agentDir = join(dir, `${name}-agent`);
  let agent: TestAgent;
  const known = await readdir(agentDir).catch(() => []);
  if (known.length > 0) {
    agent = await startTestAgent({ hubUrl: running.url, stateDir: agentDir, docker: engine.dockerHost });
  } else {
    const code = await api('POST', '/api/v1/enrollments', { name: `${name}-node` });
    assert.equal(code.status, 201, JSON.stringify(code.json));
    agent = await startTestAgent({ hubUrl: running.url, code: code.json.code, name: `${name}-node`, stateDir: agentDir, docker: engine.dockerHost });
  }
  await agent.waitConnected(1, 15_000);
  return {
    running,
    agent,
    dataDir,
    api,
    async close() {
      await agent.stop();
      client.destroy();
      await running.close();
    },
  };
}

/** The certificate the edge presents for HOST to a client trusting only ROOT (a handshake that does not verify rejects). */
function servedCertificate(port: number, host: string, root: string): Promise<X509Certificate> {
  return new Promise((resolve, reject) => {
    const socket = tls.connect({ host: '127.0.0.1', port, servername: host, ca: root, ALPNProtocols: ['http/1.1'] }, () => {
      const cert = socket.getPeerX509Certificate();
      socket.destroy();
      if (cert) resolve(cert);
      else reject(new Error('no peer certificate'));
    });
    socket.setTimeout(5_000, () => socket.destroy(new Error('handshake timed out')));
    socket.on('error', reject);
  });
}

/** GET / on HOST through the edge, trusting only ROOT. */
function fetchThroughEdge(port: number, host: string, root: string): Promise<{ status: number; body: string }> {
  return new Promise((resolve, reject) => {
    const req = https.request({ host: '127.0.0.1', port, servername: host, path: '/', headers: { host }, ca: root, agent: false }, (res) => {
      let body = '';
      res.on('data', (c: Buffer) => (body += c.toString()));
      res.on('end', () => resolve({ status: res.statusCode ?? 0, body }));
    });
    req.on('error', reject);
    req.end();
  });
}

interface TlsView {
  state: string;
  notAfter: string | null;
  error: string | null;
}

async function routeTls(hub: AcmeHub, host: string): Promise<TlsView | null> {
  const res = await hub.api('GET', '/api/v1/routes');
  const route = (res.json as Array<{ host: string; error: string | null; tls: TlsView }>).find((r) => r.host === host && r.error === null);
  return route?.tls ?? null;
}

/** Waits until the hub's ACME manager has no order running or queued (e.g. a renewal the last test started). */
async function settled(hub: AcmeHub): Promise<void> {
  await waitFor(() => hub.running.acme!.ordersInFlight === 0, 15_000, 'ACME orders in flight to finish');
}

async function waitForServed(
  port: number,
  host: string,
  root: () => Promise<string>,
  what: string,
  accept: (c: X509Certificate) => boolean = () => true,
  timeoutMs = 30_000,
): Promise<X509Certificate> {
  let last = '';
  return waitFor(
    async () => {
      try {
        const cert = await servedCertificate(port, host, await root());
        last = `serial ${cert.serialNumber}`;
        return accept(cert) ? cert : null;
      } catch (err) {
        last = (err as Error).message;
        return null;
      }
    },
    timeoutMs,
    what,
    100,
  ).catch((e: Error) => {
    throw new Error(`${e.message}; last: ${last}`);
  });
}

before(async () => {
  if (skip) return;
  [engine] = (await startEngines(1, { prefix: 'acme' })) as [TestEngine];
  dir = await mkdtemp(join(tmpdir(), 'dockfleet-acme-'));
  for (const k of Object.keys(ports) as Array<keyof typeof ports>) {
    let p = await freePort();
    while (Object.values(ports).includes(p)) p = await freePort();
    ports[k] = p;
  }
  pebble = await startPebble({ httpPort: ports.http01Http, tlsPort: ports.alpnEdge });
  await runContainer(engine, {
    name: 'web',
    cmd: ['sh', '-c', 'mkdir -p /www && echo hello-acme > /www/index.html && exec httpd -f -p 8080 -h /www'],
    labels: {
      'dockfleet.ingress.host': WEB,
      'dockfleet.ingress.port': '8080',
      'dockfleet.ingress.1.host': OTHER,
      'dockfleet.ingress.1.port': '8080',
    },
    config: { ExposedPorts: { '8080/tcp': {} } },
  });
});

after(async () => {
  await pebble?.close();
  if (engine) await stopEngines([engine]);
  if (dir) await rm(dir, { recursive: true, force: true });
});

describe('HTTP-01 (the hub has --edge-http)', { skip }, () => {
  let hub: AcmeHub;
  const edge = (): number => ports.http01Edge;
  const root = (): Promise<string> => pebble.issuingRoot();
  let firstSerial = '';

  before(async () => {
    hub = await startAcmeHub('http01', { hubPort: ports.http01Hub, edgePort: ports.http01Edge, httpPort: ports.http01Http });
  });
  after(async () => {
    await hub?.close();
  });

  test('a labelled host is served with a pebble certificate that a client trusting only pebble accepts', async () => {
    const cert = await waitForServed(edge(), WEB, root, `a pebble certificate for ${WEB}`);
    assert.ok(cert.checkHost(WEB), 'the certificate names the host');
    firstSerial = cert.serialNumber;
    const res = await fetchThroughEdge(edge(), WEB, await root());
    assert.equal(res.status, 200);
    assert.equal(res.body.trim(), 'hello-acme');
    await waitForServed(edge(), OTHER, root, `a pebble certificate for ${OTHER}`);
    const state = await waitFor(async () => ((await routeTls(hub, WEB))?.state === 'valid' ? routeTls(hub, WEB) : null), 5_000, 'tls state valid');
    assert.ok(state?.notAfter && Date.parse(state.notAfter) > Date.now(), 'the routes view shows when it expires');
    assert.equal(state.error, null);
  });

  test('the certificate key and the account key are sealed: neither is in the database file or account.json in clear', async () => {
    const files = (await readdir(hub.dataDir)).filter((f) => f.startsWith('dockfleet.db'));
    const db = Buffer.concat(await Promise.all(files.map((f) => readFile(join(hub.dataDir, f)))));
    const served = hub.running.edgeCertificates.forServerName(WEB);
    assert.ok(served, 'the book has the pair it serves');
    assert.ok(db.includes(new X509Certificate(served.cert).raw) || db.includes(served.cert.split('\n')[1]!), 'the certificate itself is in the store');
    const keyDer = createPrivateKey(served.key).export({ type: 'pkcs8', format: 'der' });
    const keyLines = served.key.split('\n').filter((l) => l !== '' && !l.startsWith('-----'));
    assert.ok(!db.includes(keyDer), "the key's DER is not in the database file");
    assert.ok(
      keyLines.every((l) => !db.includes(l)),
      "no line of the key's PEM is in the database file",
    );
    assert.ok(!db.includes('PRIVATE KEY'), 'no PEM private key at all in the database file');
    const account = await readFile(join(hub.dataDir, 'acme', 'account.json'), 'utf8');
    assert.ok(!account.includes('PRIVATE KEY'));
    assert.match(JSON.parse(account).key, /^v1\./, 'the account key is a SecretBox seal');
  });

  test('a restarted hub serves the same certificate and places no order', async () => {
    await hub.close();
    // A new contact address too: it reaches the server with the next request, not as an order.
    hub = await startAcmeHub('http01', { hubPort: ports.http01Hub, edgePort: ports.http01Edge, httpPort: ports.http01Http, email: 'admin@example.com' });
    const cert = await waitForServed(edge(), WEB, root, 'the stored certificate after a restart');
    assert.equal(cert.serialNumber, firstSerial);
    await waitFor(async () => (await routeTls(hub, WEB))?.state === 'valid', 10_000, 'the route back with its certificate');
    await new Promise((r) => setTimeout(r, 1_000)); // the manager has seen the routes and checked them
    assert.equal(hub.running.acme?.ordersPlaced, 0, 'no order after a restart');
    assert.equal((await servedCertificate(edge(), WEB, await root())).serialNumber, firstSerial);
  });

  test('early renewal: a new certificate replaces the old one with no handshake in between failing or showing another', async () => {
    const seen: string[] = [];
    let failures = 0;
    let watching = true;
    const watch = (async () => {
      while (watching) {
        try {
          seen.push((await servedCertificate(edge(), WEB, await root())).serialNumber);
        } catch {
          failures += 1;
        }
      }
    })();
    hub.running.acme!.setRenewFraction(1);
    const renewed = await waitForServed(edge(), WEB, root, 'a renewed certificate', (c) => c.serialNumber !== firstSerial);
    hub.running.acme!.setRenewFraction(1 / 3);
    watching = false;
    await watch;
    assert.equal(failures, 0, 'every handshake during the renewal verified');
    const firstNew = seen.indexOf(renewed.serialNumber);
    assert.ok(
      seen.slice(0, Math.max(firstNew, 0)).every((s) => s === firstSerial),
      'only the old certificate before the new one',
    );
    assert.ok(hub.running.acme!.ordersPlaced >= 1);
    firstSerial = renewed.serialNumber;
    const account = JSON.parse(await readFile(join(hub.dataDir, 'acme', 'account.json'), 'utf8'));
    assert.equal(account.contact, 'admin@example.com', 'the changed --acme-email was sent to the account');
  });

  test("pebble refusing the challenge: the host says failed with pebble's reason, keeps its old certificate, and recovers on a retry", async () => {
    await settled(hub);
    const before = (await servedCertificate(edge(), OTHER, await root())).serialNumber;
    await pebble.pointHost(OTHER, '127.0.0.2'); // pebble validates at an address where nothing listens
    hub.running.acme!.setRenewFraction(1);
    try {
      const failed = await waitFor(
        async () => {
          const t = await routeTls(hub, OTHER);
          return t?.state === 'failed' ? t : null;
        },
        15_000,
        'the renewal of other.example.com to fail',
      );
      assert.match(failed.error ?? '', /^ACME server refused the http-01 challenge for other\.example\.com: connection: .*connection refused/, "pebble's reason is shown");
      assert.doesNotMatch(failed.error ?? '', /acme-challenge\/[A-Za-z0-9_-]{16,}/, 'no challenge token in the reason');
      assert.equal((await servedCertificate(edge(), OTHER, await root())).serialNumber, before, 'the old certificate is still served');
      assert.equal((await fetchThroughEdge(edge(), OTHER, await root())).status, 200);
      await pebble.unpointHost(OTHER);
      await waitForServed(edge(), OTHER, root, 'a certificate after pebble accepts again', (c) => c.serialNumber !== before);
    } finally {
      hub.running.acme!.setRenewFraction(1 / 3);
      await pebble.unpointHost(OTHER);
    }
  });

  test('pebble unreachable: the host says failed with the network reason, keeps its old certificate, and is renewed after pebble is back', async () => {
    await settled(hub);
    const oldRoot = await root();
    const before = (await servedCertificate(edge(), WEB, oldRoot)).serialNumber;
    await pebble.stopServer();
    hub.running.acme!.setRenewFraction(1);
    try {
      const failed = await waitFor(
        async () => {
          const t = await routeTls(hub, WEB);
          return t?.state === 'failed' ? t : null;
        },
        15_000,
        'the renewal to fail while pebble is down',
      );
      assert.match(failed.error ?? '', /^ACME server unreachable \(https:\/\/127\.0\.0\.1:\d+\): connect ECONNREFUSED/, 'the network reason is shown');
      assert.ok(failed.notAfter, "the old certificate's expiry is still shown");
      assert.equal((await servedCertificate(edge(), WEB, oldRoot)).serialNumber, before, 'the old certificate is still served');
      await pebble.startServer(); // a new pebble: a new root, and it has forgotten the account
      const renewed = await waitForServed(edge(), WEB, root, 'a certificate from the restarted pebble');
      assert.notEqual(renewed.serialNumber, before);
    } finally {
      hub.running.acme!.setRenewFraction(1 / 3);
      await pebble.startServer();
    }
    await waitFor(async () => (await routeTls(hub, WEB))?.state === 'valid', 10_000, 'the host valid again');
  });

  test('the hub logged its orders and failures with reasons, and no key or challenge token', () => {
    const acme = hubLog.filter((l) => l.includes('"msg":"acme: '));
    assert.ok(
      acme.some((l) => l.includes('certificate stored')),
      'orders are logged',
    );
    assert.ok(
      acme.some((l) => /order failed.*|"reason":"ACME server refused/.test(l)),
      'failures are logged with the reason',
    );
    const all = hubLog.join('');
    assert.ok(!all.includes('PRIVATE KEY'), 'no key in the log');
    assert.doesNotMatch(all, /acme-challenge\/[A-Za-z0-9_-]{16,}/, 'no challenge token in the log');
    assert.doesNotMatch(all, /"keyAuthorization"|[A-Za-z0-9_-]{20,}\.[A-Za-z0-9_-]{43}/, 'no key authorization in the log');
  });
});

describe('TLS-ALPN-01 (no --edge-http)', { skip }, () => {
  let hub: AcmeHub;

  before(async () => {
    hub = await startAcmeHub('alpn', { hubPort: ports.alpnHub, edgePort: ports.alpnEdge, httpPort: null });
  });
  after(async () => {
    await hub?.close();
  });

  test('the host is validated at the edge port and served with a pebble certificate', async () => {
    const root = (): Promise<string> => pebble.issuingRoot();
    const cert = await waitForServed(ports.alpnEdge, WEB, root, `a pebble certificate for ${WEB} by TLS-ALPN-01`);
    assert.ok(cert.checkHost(WEB));
    const res = await fetchThroughEdge(ports.alpnEdge, WEB, await root());
    assert.equal(res.status, 200);
    assert.equal(res.body.trim(), 'hello-acme');
    assert.equal(hub.running.acme?.challenge, 'tls-alpn-01');
    assert.equal(hub.running.edgeHttpPort, null, 'the hub has no HTTP port to answer HTTP-01 on');
  });
});

describe('ACME pieces without a server', () => {
  test('an --acme-ca file without a certificate stops the hub with its name before anything listens', async () => {
    const scratch = await mkdtemp(join(tmpdir(), 'dockfleet-acme-ca-'));
    try {
      const notPem = join(scratch, 'ca.pem');
      await writeFile(notPem, 'not a certificate\n');
      const port = await freePort();
      const config = hubConfigFrom({
        data: join(scratch, 'hub'),
        listen: `127.0.0.1:${port}`,
        'edge-listen': '127.0.0.1:0',
        'acme-directory': 'https://127.0.0.1:9/dir',
        'acme-ca': notPem,
      });
      await assert.rejects(runHub(config, silentLogger()), new RegExp(`--acme-ca ${notPem}: no PEM certificate in it`));
      await new Promise<void>((resolve, reject) => {
        const probe = net
          .createServer()
          .once('error', reject)
          .listen(port, '127.0.0.1', () => probe.close(() => resolve()));
      });
    } finally {
      await rm(scratch, { recursive: true, force: true });
    }
  });

  test('renewal is due with less than the fraction of the lifetime left, and never for a fresh certificate', () => {
    const day = 86_400_000;
    const now = Date.UTC(2030, 0, 1);
    const record = (fromDays: number, toDays: number) => ({ host: WEB, certPem: '', notBefore: new Date(now + fromDays * day), notAfter: new Date(now + toDays * day) });
    assert.equal(needsOrder(null, now, 1 / 3), true, 'no certificate: order');
    assert.equal(needsOrder(record(-1, 89), now, 1 / 3), false, '89 of 90 days left');
    assert.equal(needsOrder(record(-60, 30), now, 1 / 3), false, 'exactly a third left');
    assert.equal(needsOrder(record(-61, 29), now, 1 / 3), true, 'under a third left');
    assert.equal(needsOrder(record(-100, -10), now, 1 / 3), true, 'expired');
  });

  test('retries double from the first delay and stop growing at the cap', () => {
    const t = { retryFirstMs: 1_000, retryMaxMs: 10_000 };
    assert.deepEqual(
      [1, 2, 3, 4, 5, 50].map((n) => retryDelayMs(n, t)),
      [1_000, 2_000, 4_000, 8_000, 10_000, 10_000],
    );
    assert.throws(() => tuningFrom({ renewFraction: 0 }), /renewFraction/);
    assert.throws(() => tuningFrom({ retryFirstMs: -1 }), /retryFirstMs/);
  });

  test('a problem document becomes a reason with its type and detail, and challenge tokens are cut out', () => {
    const token = 'Zq3xK9vT1mWbR7pLcE2sYd';
    const failure = AcmeFailure.fromProblem(
      { type: 'urn:ietf:params:acme:error:connection', detail: `Fetching http://a.example/.well-known/acme-challenge/${token}: refused` },
      400,
      'the challenge',
    ).redacted([token]);
    assert.equal(failure.problemType, 'connection');
    assert.match(failure.message, /^ACME server refused the challenge: connection: Fetching .*acme-challenge\/…: refused$/);
    assert.ok(!failure.message.includes(token));
  });

  test('the TLS-ALPN-01 certificate names only the host and carries the critical acmeIdentifier with SHA-256 of the key authorization', async () => {
    const keyAuthorization = 'token.thumbprint';
    const { cert } = await alpnChallengeCertificate(WEB, keyAuthorization);
    const parsed = new x509.X509Certificate(cert);
    assert.equal(new X509Certificate(cert).subjectAltName, `DNS:${WEB}`);
    const ext = parsed.getExtension('1.3.6.1.5.5.7.1.31');
    assert.ok(ext?.critical, 'acmeIdentifier is critical');
    const digest = createHash('sha256').update(keyAuthorization).digest();
    assert.deepEqual(Buffer.from(ext.value), Buffer.concat([Buffer.from([0x04, 0x20]), digest]));
  });
});
