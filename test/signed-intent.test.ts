/**
 * Signed intent: a host whose local policy requires signatures refuses what a compromised hub
 * could send — a job written straight into its database, a call with the admin token, a replay
 * (also after the agent restarts), a signature for another node, a changed body, path or query,
 * an expired or too long-lived intent, a sealed upload altered in flight, a key it does not list
 * — and each refusal is in the host's own audit log. Signed calls and sealed uploads work.
 * Real private dockerd, real hub (TLS, SQLite), real `dockfleet agent` process.
 *
 * DOCKFLEET_TEST_INTENT_OFF=1 runs the same checks against a host without `signedIntent`
 * (every refusal test must then fail: the proof that they test the enforcement).
 */
import assert from 'node:assert/strict';
import https from 'node:https';
import tls from 'node:tls';
import { mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { createHash } from 'node:crypto';
import { after, before, test } from 'node:test';
import tarStream from 'tar-stream';
import { IntentSigner, generateOperatorKey } from '../src/lib/intent-keys.ts';
import { INTENT_BODY_HEADER, INTENT_HEADER, SEALED_BODY, dockerOp, encodeIntent, intentPayload, intentSigningBytes, type IntentClaims } from '../src/protocol/intent.ts';
import { FRAME_DATA, FRAME_SEAL, MAX_SEGMENT, frameHead, sealBody, sealSigningBytes } from '../src/protocol/intent-stream.ts';
import { emptyRevision } from './support/job-agent.ts';
import { BUSYBOX_IMAGE, engineRequest, runContainer, startEngines, stopEngines, type TestEngine } from './support/engines.ts';
import { mintCode, nodeStatus, startTestHub, waitFor, type TestHub } from './support/hub-fixture.ts';
import { freePort, spawnDockfleet, type DockfleetProcess } from './support/processes.ts';

const NODE = 'signed-1';
const API = '/v1.41';
const enforcementOff = process.env.DOCKFLEET_TEST_INTENT_OFF === '1';
const listed = generateOperatorKey();
const unlisted = generateOperatorKey();
const signer = new IntentSigner(listed.privateKeyPem, 'alice');
const stranger = new IntentSigner(unlisted.privateKeyPem, 'mallory');

let engine: TestEngine;
let hub: TestHub;
let dir: string;
let agent: DockfleetProcess | undefined;
let box: string;

function policy(require: 'mutations' | 'all'): string {
  const sections = Object.fromEntries(['ping', 'version', 'info', 'events', 'system', 'containers', 'exec', 'archive', 'images', 'volumes', 'networks'].map((s) => [s, true]));
  return JSON.stringify({ sections, ...(enforcementOff ? {} : { signedIntent: { operators: [listed.publicKey], require } }) });
}

async function startAgent(code?: string): Promise<void> {
  agent = spawnDockfleet(['agent', '--hub', hub.url, ...(code ? ['--code', code] : []), '--state', join(dir, 'agent'), '--docker', engine.dockerHost, '--policy', join(dir, 'policy.json')]);
  await agent.waitForLine(new RegExp(`agent ${NODE} connected`));
  await waitFor(async () => (await nodeStatus(hub, NODE)) === 'online', 10_000, 'node online');
}

async function restartAgent(): Promise<void> {
  await agent?.stop();
  await waitFor(async () => (await nodeStatus(hub, NODE)) !== 'online', 10_000, 'node offline');
  await startAgent();
}

before(async () => {
  [engine] = (await startEngines(1, { prefix: 'signed-intent' })) as [TestEngine];
  dir = await mkdtemp(join(tmpdir(), 'dockfleet-signed-intent-'));
  await writeFile(join(dir, 'policy.json'), policy('mutations'));
  hub = await startTestHub({ dataDir: join(dir, 'hub'), port: await freePort() });
  await startAgent(await mintCode(hub, NODE));
  box = await runContainer(engine, { name: 'box' });
});

after(async () => {
  await agent?.stop();
  await hub?.stop();
  if (engine) await stopEngines([engine]);
  if (dir) await rm(dir, { recursive: true, force: true });
});

interface Answer {
  status: number;
  text: string;
  json: any;
  headers: Record<string, string | string[] | undefined>;
}

/** One Docker call through the hub with the admin token (what a compromised hub holds). */
function docker(method: string, path: string, opts: { headers?: Record<string, string>; body?: Buffer; chunks?: Buffer[] } = {}): Promise<Answer> {
  return new Promise((resolve, reject) => {
    const headers: Record<string, string> = { authorization: `Bearer ${hub.token}`, ...opts.headers };
    const body = opts.body ?? (opts.chunks ? Buffer.concat(opts.chunks) : undefined);
    if (body) headers['content-length'] = String(body.length);
    const req = https.request(new URL(`/docker/nodes/${NODE}${path}`, hub.url), { method, headers, ca: hub.caPem, agent: false }, (res) => {
      const chunks: Buffer[] = [];
      res.on('data', (c: Buffer) => chunks.push(c));
      res.on('error', () => resolve({ status: res.statusCode ?? 0, text: Buffer.concat(chunks).toString(), json: null, headers: res.headers }));
      res.on('end', () => {
        const text = Buffer.concat(chunks).toString();
        let json: any = null;
        try {
          json = JSON.parse(text);
        } catch {
          /* not JSON */
        }
        resolve({ status: res.statusCode ?? 0, text, json, headers: res.headers });
      });
    });
    req.on('error', reject);
    // Every call has a deadline: a hang fails the test with what was seen, never stalls the run.
    req.setTimeout(30_000, () => req.destroy(new Error(`${method} ${path} got no answer in 30 s; agent log tail: ${agent?.stderr().slice(-2000)}`)));
    if (opts.chunks) {
      // Sent in parts, the way a streamed upload arrives.
      for (const c of opts.chunks) req.write(c);
      req.end();
    } else req.end(body);
  });
}

function digest(body: Buffer = Buffer.alloc(0)): string {
  return `sha256:${createHash('sha256').update(body).digest('hex')}`;
}

function signedHeaders(method: string, path: string, body?: Buffer, by = signer, node = NODE): Record<string, string> {
  return { [INTENT_HEADER]: by.intent(node, dockerOp(method, path), digest(body)).wire };
}

/** An intent with claims chosen by the test (times out of range), signed by the listed key. */
function craftedIntent(claims: Partial<IntentClaims> & Pick<IntentClaims, 'op' | 'body'>): string {
  const now = Date.now();
  const full: IntentClaims = { v: 1, key: signer.publicKey, node: NODE, nonce: Buffer.from(crypto.getRandomValues(new Uint8Array(18))).toString('base64url'), iat: now, exp: now + 60_000, ...claims };
  const payload = intentPayload(full);
  return encodeIntent(payload, signer.signBytes(intentSigningBytes(payload)));
}

function assertRefused(res: Answer, reason: RegExp): void {
  assert.equal(res.status, 403, `refused (got ${res.status}: ${res.text.slice(0, 300)})`);
  assert.equal(res.headers['x-dockfleet-policy'], 'refused');
  assert.match(String(res.json?.message), /^dockfleet: this host requires signed intent: /);
  assert.match(String(res.json?.message), reason);
  assert.match(String(res.json?.message), /Use `dockfleet connect signed-1 --socket PATH` or the web UI/);
}

async function running(id: string): Promise<boolean> {
  return (await engineRequest(engine.socketPath, 'GET', `/containers/${id}/json`)).json.State.Running as boolean;
}

async function hostAudit(): Promise<Array<Record<string, any>>> {
  const text = await readFile(join(dir, 'agent', 'audit.log'), 'utf8').catch(() => '');
  return text
    .split('\n')
    .filter(Boolean)
    .map((l) => JSON.parse(l) as Record<string, any>);
}

async function auditedRefusal(reason: RegExp): Promise<Record<string, any>> {
  return waitFor(async () => (await hostAudit()).find((e) => e.result === 'refused' && reason.test(String(e.reason))), 5_000, `a refusal matching ${reason} in the host audit log`);
}

test('a container stop with the admin token and no intent is refused with the message, the container runs on, and the host logs it', async () => {
  const res = await docker('POST', `${API}/containers/${box}/stop?t=0`);
  assertRefused(res, /the call carries no signed intent/);
  assert.equal(await running(box), true);
  const entry = await auditedRefusal(/carries no signed intent/);
  assert.equal(entry.op, `POST /containers/${box}/stop`);
  assert.equal(entry.user, 'admin.token', 'the user the hub named (the admin token)');
});

test('a key the host does not list is refused', async () => {
  const path = `${API}/containers/${box}/stop?t=0`;
  assertRefused(await docker('POST', path, { headers: signedHeaders('POST', path, undefined, stranger) }), /a key this host's policy does not list/);
  assert.equal(await running(box), true);
  await auditedRefusal(/does not list/);
});

test('a signature made for another node is refused', async () => {
  const path = `${API}/containers/${box}/stop?t=0`;
  assertRefused(await docker('POST', path, { headers: signedHeaders('POST', path, undefined, signer, 'signed-2') }), /signed for node "signed-2"/);
  assert.equal(await running(box), true);
});

test('a valid signature with a changed path, query or body is refused', async () => {
  const other = await runContainer(engine, { name: 'other' });
  const signedPath = `${API}/containers/${other}/stop?t=0`;
  assertRefused(await docker('POST', `${API}/containers/${box}/stop?t=0`, { headers: signedHeaders('POST', signedPath) }), /was signed for "docker POST/);
  assertRefused(await docker('POST', `${API}/containers/${other}/stop?t=5`, { headers: signedHeaders('POST', signedPath) }), /was signed for/);
  assert.equal(await running(box), true);
  assert.equal(await running(other), true);
  const create = `${API}/containers/create?name=made`;
  const signedBody = Buffer.from(JSON.stringify({ Image: BUSYBOX_IMAGE, Cmd: ['true'] }));
  const sentBody = Buffer.from(JSON.stringify({ Image: BUSYBOX_IMAGE, Cmd: ['sh', '-c', 'echo hub was here'] }));
  const res = await docker('POST', create, { headers: { ...signedHeaders('POST', create, signedBody), 'content-type': 'application/json' }, body: sentBody });
  assertRefused(res, /the body is not the one that was signed/);
  assert.equal((await engineRequest(engine.socketPath, 'GET', '/containers/made/json')).status, 404);
  await auditedRefusal(/not the one that was signed/);
});

test('an expired intent and one that lives over five minutes are refused', async () => {
  const path = `${API}/containers/${box}/stop?t=0`;
  const now = Date.now();
  assertRefused(await docker('POST', path, { headers: { [INTENT_HEADER]: craftedIntent({ op: dockerOp('POST', path), body: digest(), iat: now - 120_000, exp: now - 60_000 }) } }), /it expired at/);
  assertRefused(await docker('POST', path, { headers: { [INTENT_HEADER]: craftedIntent({ op: dockerOp('POST', path), body: digest(), iat: now, exp: now + 6 * 60_000 }) } }), /lifetime is 360000 ms/);
  assertRefused(
    await docker('POST', path, { headers: { [INTENT_HEADER]: craftedIntent({ op: dockerOp('POST', path), body: digest(), iat: now + 5 * 60_000, exp: now + 6 * 60_000 }) } }),
    /in the future/,
  );
  assert.equal(await running(box), true);
});

test('reads need no signature on a "mutations" host', async () => {
  const res = await docker('GET', `${API}/containers/json`);
  assert.equal(res.status, 200);
  assert.ok(Array.isArray(res.json));
});

test('a valid signed stop works; the same header again, and again after an agent restart, is refused as a replay', async () => {
  const victim = await runContainer(engine, { name: 'victim' });
  const path = `${API}/containers/${victim}/stop?t=0`;
  const headers = signedHeaders('POST', path);
  const ok = await docker('POST', path, { headers });
  assert.equal(ok.status, 204, ok.text);
  assert.equal(await running(victim), false);
  const entry = await waitFor(async () => (await hostAudit()).find((e) => e.result === 'ok' && e.op === `POST /containers/${victim}/stop`), 5_000, 'the signed stop in the host log');
  assert.equal(entry.key, listed.publicKey, 'the signing key is recorded');
  await engineRequest(engine.socketPath, 'POST', `/containers/${victim}/start`);
  assertRefused(await docker('POST', path, { headers }), /already used \(a replay\)/);
  assert.equal(await running(victim), true);
  await restartAgent();
  assertRefused(await docker('POST', path, { headers }), /already used \(a replay\)/);
  assert.equal(await running(victim), true);
});

test('a job written straight into the hub database is refused by the agent, and the host logs it', async () => {
  // What a compromised hub can do: file a job itself (no operator signed it).
  const filed = await hub.hub.jobs.file({
    kind: 'deploy',
    node: NODE,
    stack: 'evil',
    target: emptyRevision('evil', 1),
    secrets: { env: {}, files: {} },
    idempotencyKey: `test:${NODE}:evil:1`,
    createdBy: 'hub-db',
  });
  const done = await hub.hub.jobs.wait(filed.id, AbortSignal.timeout(15_000));
  assert.equal(done.state, 'failed');
  const detail = (await hub.hub.jobs.get(filed.id))!;
  assert.match(JSON.stringify(detail), /this host requires signed intent: the call carries no signed intent/);
  await auditedRefusal(/carries no signed intent/);
  assert.ok((await hostAudit()).some((e) => e.op === `job deploy ${filed.id}` && e.result === 'refused'));
});

// --- sealed uploads -----------------------------------------------------------------

async function tarOf(name: string, content: Buffer): Promise<Buffer> {
  const pack = tarStream.pack();
  pack.entry({ name, size: content.length, mode: 0o644 }, content);
  pack.finalize();
  const chunks: Buffer[] = [];
  for await (const c of pack as AsyncIterable<Buffer>) chunks.push(c);
  return Buffer.concat(chunks);
}

interface Frame {
  kind: 'D' | 'S';
  bytes: Buffer;
}

/** The body as the signer frames it: data frames of `segment` bytes, each followed by its seal. */
function sealedFrames(body: Buffer, nonce: string, segment = MAX_SEGMENT): Frame[] {
  const frames: Frame[] = [];
  const hash = createHash('sha256');
  let index = 0n;
  let total = 0n;
  for (let off = 0; off < body.length || index === 0n; off += segment) {
    const part = body.subarray(off, off + segment);
    hash.update(part);
    total += BigInt(part.length);
    frames.push({ kind: 'D', bytes: Buffer.concat([frameHead(FRAME_DATA, part.length), part]) });
    const final = off + segment >= body.length;
    const sig = signer.signBytes(sealSigningBytes(nonce, index, final, total, hash.copy().digest('hex')));
    frames.push({ kind: 'S', bytes: Buffer.concat([frameHead(FRAME_SEAL, 81), sealBody(index, final, total, sig)]) });
    index++;
    if (final) break;
  }
  return frames;
}

async function fileSize(id: string, path: string): Promise<number | null> {
  const res = await engineRequest(engine.socketPath, 'HEAD', `/containers/${id}/archive?path=${encodeURIComponent(path)}`);
  if (res.status === 404) return null;
  const stat = res.headers['x-docker-container-path-stat'];
  return stat ? (JSON.parse(Buffer.from(String(stat), 'base64').toString()) as { size: number }).size : null;
}

async function sealedUpload(name: string, content: Buffer, alter: (frames: Frame[]) => Frame[], container = box): Promise<Answer> {
  const path = `${API}/containers/${container}/archive?path=/tmp`;
  const { wire, claims } = signer.intent(NODE, dockerOp('PUT', path), 'stream');
  const frames = alter(sealedFrames(await tarOf(name, content), claims.nonce));
  return docker('PUT', path, {
    headers: { [INTENT_HEADER]: wire, [INTENT_BODY_HEADER]: SEALED_BODY, 'content-type': 'application/x-tar' },
    chunks: frames.map((f) => f.bytes),
  });
}

const CONTENT = Buffer.alloc(3 * MAX_SEGMENT + 12345, 7);
for (let i = 0; i < CONTENT.length; i += 4096) CONTENT[i] = i & 0xff;

test('a valid sealed upload works', async () => {
  const res = await sealedUpload('good.bin', CONTENT, (f) => f);
  assert.equal(res.status, 200, res.text);
  assert.equal(await fileSize(box, '/tmp/good.bin'), CONTENT.length);
});

const tampering: Array<[string, (frames: Frame[]) => Frame[], RegExp]> = [
  [
    'one byte flipped in the second segment',
    (frames) =>
      frames.map((f, i) => {
        if (i !== 2) return f;
        const bytes = Buffer.from(f.bytes);
        bytes[1000] = bytes[1000]! ^ 0x01;
        return { ...f, bytes };
      }),
    /seal 1 does not verify/,
  ],
  ['truncated (the final seal and what precedes it dropped)', (frames) => frames.slice(0, -3), /ended without its final seal/],
  ['two segments swapped', (frames) => [frames[0]!, frames[1]!, frames[4]!, frames[5]!, frames[2]!, frames[3]!, ...frames.slice(6)], /seal 2 arrived where seal 1 was due|does not verify/],
  ['extended after the final seal', (frames) => [...frames, { kind: 'D', bytes: Buffer.concat([frameHead(FRAME_DATA, 3), Buffer.from('xyz')]) }], /after the final seal/],
];

for (const [what, alter, reason] of tampering) {
  test(`a sealed upload ${what} in flight is refused, and the file is not complete in the container`, async () => {
    const name = `t-${what.split(' ')[0]}-${Math.random().toString(36).slice(2, 8)}.bin`;
    const res = await sealedUpload(name, CONTENT, alter);
    assertRefused(res, reason);
    const size = await fileSize(box, `/tmp/${name}`);
    assert.notEqual(size, CONTENT.length, `the file is absent or short (size ${size})`);
    await auditedRefusal(reason);
  });
}

test('on an "all" host an unsigned read is refused and a signed one works', async () => {
  await writeFile(join(dir, 'policy.json'), policy('all'));
  await restartAgent();
  const path = `${API}/containers/json`;
  assertRefused(await docker('GET', path), /carries no signed intent/);
  const ok = await docker('GET', path, { headers: signedHeaders('GET', path) });
  assert.equal(ok.status, 200, ok.text);
  assert.ok(Array.isArray(ok.json));
});

test('on an "all" host a forged signature, a replay, an unknown claim or another path gets no answer from the engine, read or change', async () => {
  // A read is verified while the engine already works on it: what must hold is that none of its
  // answer leaves the host unless the check passed.
  const path = `${API}/containers/json`;
  const forged = (op: string): string => {
    const now = Date.now();
    const claims: IntentClaims = { v: 1, key: signer.publicKey, node: NODE, op, body: digest(), nonce: `forged${now}${'x'.repeat(20)}`, iat: now, exp: now + 60_000 };
    const other = intentPayload({ ...claims, op: dockerOp('GET', '/_ping') });
    return encodeIntent(intentPayload(claims), signer.signBytes(intentSigningBytes(other)));
  };
  const noList = (res: Answer, what = 'replay'): void => assert.ok(!Array.isArray(res.json) && !res.text.includes(box), `${what}: no container list leaked: ${res.text.slice(0, 200)}`);
  for (const [what, headers, reason] of [
    ['forged read', { [INTENT_HEADER]: forged(dockerOp('GET', path)) }, /its signature does not verify/],
    ['read signed for another path', signedHeaders('GET', `${API}/images/json`), /was signed for "docker GET \/v1.41\/images\/json"/],
    ['read with an unknown claim', { [INTENT_HEADER]: craftedIntent({ op: dockerOp('GET', path), body: digest(), ...({ admin: true } as object) }) }, /malformed \(admin: not a claim\)/],
  ] as const) {
    const res = await docker('GET', path, { headers });
    assertRefused(res, reason);
    noList(res, what);
    await auditedRefusal(reason);
  }
  const once = signedHeaders('GET', path);
  assert.equal((await docker('GET', path, { headers: once })).status, 200);
  const replay = await docker('GET', path, { headers: once });
  assertRefused(replay, /already used \(a replay\)/);
  noList(replay);

  const stop = `${API}/containers/${box}/stop?t=0`;
  assertRefused(await docker('POST', stop, { headers: { [INTENT_HEADER]: forged(dockerOp('POST', stop)) } }), /its signature does not verify/);
  assert.equal(await running(box), true, 'the forged stop did not reach the engine');
  // The engine connection a refused read was cut on is not reused: the next signed read works.
  const ok = await docker('GET', path, { headers: signedHeaders('GET', path) });
  assert.equal(ok.status, 200, ok.text);
  assert.ok(Array.isArray(ok.json));
});

// --- hijacked calls (exec start) ----------------------------------------------------

/** The signer's side of one sealed stream, segment by segment (each call: a data frame and its seal). */
class Sealer {
  readonly #hash = createHash('sha256');
  #index = 0n;
  #total = 0n;
  constructor(readonly nonce: string) {}
  segment(data: Buffer, final = false): Buffer {
    this.#hash.update(data);
    this.#total += BigInt(data.length);
    const sig = signer.signBytes(sealSigningBytes(this.nonce, this.#index, final, this.#total, this.#hash.copy().digest('hex')));
    const out = Buffer.concat([frameHead(FRAME_DATA, data.length), data, frameHead(FRAME_SEAL, 81), sealBody(this.#index, final, this.#total, sig)]);
    this.#index++;
    return out;
  }
}

/** Raw HTTP/1.1 upgrade through the hub: writes the head and body, then `after(socket)` once 101 came. */
function hijack(path: string, headers: Record<string, string>, body: Buffer, after: (socket: tls.TLSSocket) => void): Promise<{ head: string; output: string }> {
  return new Promise((resolve, reject) => {
    const url = new URL(hub.url);
    const socket = tls.connect({ host: url.hostname, port: Number(url.port), ca: hub.caPem, servername: 'localhost' });
    let raw = Buffer.alloc(0);
    let upgraded = false;
    socket.on('secureConnect', () => {
      const lines = [
        `POST /docker/nodes/${NODE}${path} HTTP/1.1`,
        `Host: ${url.host}`,
        `Authorization: Bearer ${hub.token}`,
        'Content-Type: application/json',
        'Connection: Upgrade',
        'Upgrade: tcp',
        `Content-Length: ${body.length}`,
        ...Object.entries(headers).map(([k, v]) => `${k}: ${v}`),
      ];
      socket.write(`${lines.join('\r\n')}\r\n\r\n`);
      socket.write(body);
    });
    socket.on('data', (chunk: Buffer) => {
      raw = Buffer.concat([raw, chunk]);
      if (!upgraded && raw.includes('\r\n\r\n') && raw.toString('latin1').startsWith('HTTP/1.1 101')) {
        upgraded = true;
        after(socket);
      }
    });
    socket.on('error', reject);
    socket.on('close', () => {
      const text = raw.toString('latin1');
      const at = text.indexOf('\r\n\r\n');
      resolve({ head: text.slice(0, at), output: text.slice(at + 4) });
    });
    setTimeout(() => socket.destroy(), 15_000).unref();
  });
}

async function execFor(cmd: string[]): Promise<string> {
  const path = `${API}/containers/${box}/exec`;
  const body = Buffer.from(JSON.stringify({ Cmd: cmd, AttachStdin: true, AttachStdout: true, AttachStderr: true, Tty: false }));
  const res = await docker('POST', path, { headers: { ...signedHeaders('POST', path, body), 'content-type': 'application/json' }, body });
  assert.equal(res.status, 201, res.text);
  return res.json.Id as string;
}

test('a signed exec start with a sealed body and sealed stdin works; stdin that is not sealed ends the call', async () => {
  const id = await execFor(['sh', '-c', 'read line; echo "got:$line"']);
  const path = `${API}/exec/${id}/start`;
  const { wire, claims } = signer.intent(NODE, dockerOp('POST', path), 'stream');
  const sealer = new Sealer(claims.nonce);
  const ok = await hijack(path, { [INTENT_HEADER]: wire, [INTENT_BODY_HEADER]: SEALED_BODY }, sealer.segment(Buffer.from(JSON.stringify({ Detach: false, Tty: false }))), (socket) => {
    socket.write(sealer.segment(Buffer.from('sealed-hello\n'), true));
  });
  assert.match(ok.head, /^HTTP\/1\.1 101/);
  assert.match(ok.output, /got:sealed-hello/);

  // Signed over its JSON body only (digest): stdin bytes would be unsigned, so the call ends without them.
  const id2 = await execFor(['sh', '-c', 'read line; echo "got:$line"']);
  const path2 = `${API}/exec/${id2}/start`;
  const startBody = Buffer.from(JSON.stringify({ Detach: false, Tty: false }));
  const cut = await hijack(path2, signedHeaders('POST', path2, startBody), startBody, (socket) => socket.write('unsigned-hello\n'));
  assert.doesNotMatch(cut.output, /got:unsigned-hello/);
  await auditedRefusal(/stdin of a signed exec or attach call must be sealed/);

  // A sealed stdin altered in flight: the call ends, and the altered line never reaches the process.
  const id3 = await execFor(['sh', '-c', 'read line; echo "got:$line"']);
  const path3 = `${API}/exec/${id3}/start`;
  const third = signer.intent(NODE, dockerOp('POST', path3), 'stream');
  const sealer3 = new Sealer(third.claims.nonce);
  const bad = await hijack(path3, { [INTENT_HEADER]: third.wire, [INTENT_BODY_HEADER]: SEALED_BODY }, sealer3.segment(startBody), (socket) => {
    const frames = sealer3.segment(Buffer.from('sealed-hello\n'), true);
    frames[5] = 'X'.charCodeAt(0);
    socket.write(frames);
  });
  assert.doesNotMatch(bad.output, /got:/);
  await auditedRefusal(/seal 1 does not verify/);
});
