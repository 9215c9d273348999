/** Secrets at rest (issue 14, item 1): a real hub (TLS, SQLite) with its master key from each
 * source — the default file beside DIR, DOCKFLEET_MASTER_KEY, a systemd credential directory —
 * gets known secrets through its API (a stack's secret env, a registry password, an alert
 * receiver's token and URL, an edge certificate's key). Stopped, neither its database files
 * (with -wal/-shm) nor a copy of the whole data directory hold any of them, nor the CA's or the
 * server's private key, nor the master key, in raw, base64 or hex form. Started again with the
 * key, the secrets still work: a rollback delivers the sealed secret env, the receiver gets its
 * token, TLS is served with the same certificate. A wrong or missing key is refused with a clear
 * error and nothing on disk changes; a 0644 or short key file is refused; an old hub's
 * DIR/secrets.key and plain PEM keys are moved out and sealed. */
import assert from 'node:assert/strict';
import { createHash, createPrivateKey, randomBytes } from 'node:crypto';
import { once } from 'node:events';
import { chmod, cp, mkdir, mkdtemp, readFile, readdir, rename, rm, stat, writeFile } from 'node:fs/promises';
import { createServer, type IncomingHttpHeaders, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import tls from 'node:tls';
import { after, test } from 'node:test';
import { defaultMasterKeyFile, MASTER_KEY_CREDENTIAL } from '../src/hub/backup/master-key.ts';
import { SecretBox } from '../src/hub/secret-box.ts';
import { mintCode, startTestHub, waitFor, type TestHub } from './support/hub-fixture.ts';
import { startJobAgent, succeed, type JobAgent } from './support/job-agent.ts';
import { freePort, spawnDockfleet } from './support/processes.ts';
import { makeCa, makeLeaf } from './support/test-certs.ts';

const COMPOSE = 'services:\n  app:\n    image: busybox:1.36\n    environment:\n      TOKEN: "${TOKEN}"\n';
const work: string[] = [];
const hubs: TestHub[] = [];
const agents: JobAgent[] = [];
const servers: Server[] = [];
const ENV_KEYS = ['DOCKFLEET_MASTER_KEY', 'DOCKFLEET_MASTER_KEY_FILE', 'CREDENTIALS_DIRECTORY'] as const;

after(async () => {
  for (const a of agents) await a.stop().catch(() => {});
  for (const h of hubs) await h.stop({ keepData: true }).catch(() => {});
  for (const s of servers) s.close();
  for (const k of ENV_KEYS) delete process.env[k];
  for (const d of work) await rm(d, { recursive: true, force: true });
});

/** A webhook on 127.0.0.1 that records what each alert delivery carried. */
async function webhook(): Promise<{ url: string; seen: Array<{ path: string; headers: IncomingHttpHeaders }> }> {
  const seen: Array<{ path: string; headers: IncomingHttpHeaders }> = [];
  const server = createServer((req, res) => {
    seen.push({ path: req.url ?? '', headers: req.headers });
    req.resume();
    req.on('end', () => res.end('ok'));
  });
  servers.push(server);
  server.listen(0, '127.0.0.1');
  await once(server, 'listening');
  return { url: `http://127.0.0.1:${(server.address() as AddressInfo).port}`, seen };
}

/** Every form a secret could take in a file: raw bytes, base64, base64url, hex. */
function forms(label: string, value: Buffer): Array<{ label: string; bytes: Buffer }> {
  return [
    { label: `${label} (raw)`, bytes: value },
    { label: `${label} (base64)`, bytes: Buffer.from(value.toString('base64')) },
    { label: `${label} (base64url)`, bytes: Buffer.from(value.toString('base64url')) },
    { label: `${label} (hex)`, bytes: Buffer.from(value.toString('hex')) },
  ];
}

/** A private key's PEM body lines and its DER in every form. */
function keyForms(label: string, pem: string): Array<{ label: string; bytes: Buffer }> {
  const body = pem.split('\n').filter((l) => l !== '' && !l.startsWith('-----'));
  const der = createPrivateKey(pem).export({ type: 'pkcs8', format: 'der' });
  return [...body.map((line, i) => ({ label: `${label} PEM line ${i + 1}`, bytes: Buffer.from(line) })), ...forms(`${label} DER`, der)];
}

async function filesUnder(dir: string): Promise<string[]> {
  const out: string[] = [];
  for (const entry of await readdir(dir, { withFileTypes: true, recursive: true })) {
    if (entry.isFile()) out.push(join(entry.parentPath, entry.name));
  }
  return out;
}

function hitsIn(files: Array<{ name: string; bytes: Buffer }>, needles: Array<{ label: string; bytes: Buffer }>): string[] {
  const hits: string[] = [];
  for (const f of files) for (const n of needles) if (f.bytes.includes(n.bytes)) hits.push(`${n.label} in ${f.name}`);
  return hits;
}

/** Path → sha256 and mtime of everything under DIR, to show a refused start changed nothing. */
async function snapshot(dir: string): Promise<Record<string, string>> {
  const out: Record<string, string> = {};
  for (const f of await filesUnder(dir)) {
    const s = await stat(f);
    out[f] = `${createHash('sha256')
      .update(await readFile(f))
      .digest('hex')} ${s.mtimeMs} ${(s.mode & 0o777).toString(8)}`;
  }
  return out;
}

async function rolloutDone(hub: TestHub, stack: string, id: string): Promise<{ state: string }> {
  return waitFor(
    async () => {
      const r = await hub.api('GET', `/api/v1/stacks/${stack}/rollouts/${id}`);
      return r.json.state !== 'running' && r.json;
    },
    15_000,
    `rollout ${id}`,
  );
}

async function servedFingerprint(hub: TestHub): Promise<string> {
  const url = new URL(hub.url);
  return new Promise((resolve, reject) => {
    const socket = tls.connect({ host: url.hostname, port: Number(url.port), ca: hub.caPem, servername: 'localhost' }, () => {
      const fp = socket.getPeerX509Certificate()!.fingerprint256;
      socket.destroy();
      resolve(fp);
    });
    socket.once('error', reject);
  });
}

type Source = 'file' | 'env' | 'credential';

/** Sets the environment so the next hub start finds KEY through SOURCE (the file source: default place). */
async function offerKey(source: Source, key: Buffer, dir: string): Promise<void> {
  for (const k of ENV_KEYS) delete process.env[k];
  if (source === 'env') process.env.DOCKFLEET_MASTER_KEY = key.toString('base64');
  if (source === 'credential') {
    const creds = join(dir, 'credentials');
    await mkdir(creds, { recursive: true });
    await rm(join(creds, MASTER_KEY_CREDENTIAL), { force: true });
    await writeFile(join(creds, MASTER_KEY_CREDENTIAL), key, { mode: 0o400 });
    process.env.CREDENTIALS_DIRECTORY = creds;
  }
}

interface Planted {
  dir: string;
  dataDir: string;
  port: number;
  key: Buffer;
  agentState: string;
  needles: Array<{ label: string; bytes: Buffer }>;
  receiverId: string;
  hook: Awaited<ReturnType<typeof webhook>>;
  secretEnv: string;
  fingerprint: string;
}

/** A hub with the key from SOURCE, secrets planted through its API, then stopped. */
async function plant(source: Source): Promise<Planted> {
  const dir = await mkdtemp(join(tmpdir(), 'dockfleet-at-rest-'));
  work.push(dir);
  const dataDir = join(dir, 'hub');
  const port = await freePort();
  const given = randomBytes(32);
  if (source !== 'file') await offerKey(source, given, dir);
  else for (const k of ENV_KEYS) delete process.env[k];
  const hub = await startTestHub({ dataDir, port });
  hubs.push(hub);
  if (source === 'env') assert.equal(process.env.DOCKFLEET_MASTER_KEY, undefined, 'the key leaves the environment once read');
  const keyFile = defaultMasterKeyFile(dataDir);
  let key = given;
  if (source === 'file') {
    const info = await stat(keyFile);
    assert.equal(info.mode & 0o777, 0o600, 'the default key file is 0600');
    key = await readFile(keyFile);
    assert.equal(key.length, 32);
  } else {
    await assert.rejects(stat(keyFile), { code: 'ENOENT' }, 'no key file is made when the key comes from elsewhere');
  }

  const agentState = join(dir, 'agent');
  const agent = await startJobAgent({ hubUrl: hub.url, code: await mintCode(hub, 'n1'), stateDir: agentState, answer: (job, res) => succeed(job, res) });
  agents.push(agent);
  await agent.waitConnected();

  const secretEnv = `stack-env-${randomBytes(12).toString('hex')}`;
  const laterEnv = `stack-env-${randomBytes(12).toString('hex')}`;
  for (const value of [secretEnv, laterEnv]) {
    const res = await hub.api('POST', '/api/v1/stacks/sec/deploy', { compose: COMPOSE, secretEnv: { TOKEN: value }, target: { node: 'n1' } });
    assert.equal(res.status, 202, JSON.stringify(res.json));
    assert.equal((await rolloutDone(hub, 'sec', res.json.rollout)).state, 'succeeded');
  }
  assert.equal(agent.deliveries.at(-1)!.job.secrets.env.TOKEN, laterEnv, 'the agent got the secret env');

  const registryPassword = `registry-pw-${randomBytes(12).toString('hex')}`;
  const reg = await hub.api('POST', '/api/v1/registries', { server: 'registry.example.test:5000', username: 'deployer', password: registryPassword });
  assert.equal(reg.status, 201, JSON.stringify(reg.json));

  const hook = await webhook();
  const receiverToken = `receiver-token-${randomBytes(12).toString('hex')}`;
  const hookPath = `hook-${randomBytes(12).toString('hex')}`;
  const rcv = await hub.api('POST', '/api/v1/alert-receivers', { name: 'ops', format: 'json', url: `${hook.url}/${hookPath}`, headers: { authorization: `Bearer ${receiverToken}` } });
  assert.equal(rcv.status, 201, JSON.stringify(rcv.json));

  const leaf = await makeLeaf(await makeCa('at-rest CA'), { names: ['app.at-rest.test'] });
  const cert = await hub.api('POST', '/api/v1/certificates', { certPem: leaf.certPem, keyPem: leaf.keyPem });
  assert.equal(cert.status, 201, JSON.stringify(cert.json));

  const fingerprint = await servedFingerprint(hub);
  // A copy of the database taken while the hub runs (what a careless backup would grab).
  const liveCopy = join(dir, 'live-db-copy');
  await mkdir(liveCopy);
  for (const f of await readdir(dataDir)) if (f.startsWith('dockfleet.db')) await cp(join(dataDir, f), join(liveCopy, f));
  await hub.stop({ keepData: true });
  hubs.splice(hubs.indexOf(hub), 1);
  await agent.stop();
  agents.splice(agents.indexOf(agent), 1);

  const box = new SecretBox(key);
  const caKey = box.openText((await readFile(join(dataDir, 'pki', 'ca-key.pem'), 'utf8')).trim(), 'hub-pki:ca-key');
  const serverKey = box.openText((await readFile(join(dataDir, 'pki', 'server-key.pem'), 'utf8')).trim(), 'hub-pki:server-key');
  const needles = [
    ...forms('stack secret env', Buffer.from(secretEnv)),
    ...forms('later stack secret env', Buffer.from(laterEnv)),
    ...forms('registry password', Buffer.from(registryPassword)),
    ...forms('receiver token', Buffer.from(receiverToken)),
    ...forms('receiver URL path', Buffer.from(hookPath)),
    ...keyForms('edge certificate key', leaf.keyPem),
    ...keyForms('CA key', caKey),
    ...keyForms('server key', serverKey),
    ...forms('master key', key),
  ];
  return { dir, dataDir, port, key, agentState, needles, receiverId: rcv.json.id, hook, secretEnv, fingerprint };
}

/** (a) the database with its -wal/-shm, live and stopped; (b) a copy of the whole data directory. */
async function assertNothingFound(p: Planted): Promise<void> {
  const dbFiles = (await readdir(p.dataDir)).filter((f) => f.startsWith('dockfleet.db'));
  assert.ok(dbFiles.includes('dockfleet.db'));
  const db = await Promise.all([
    ...dbFiles.map(async (f) => ({ name: f, bytes: await readFile(join(p.dataDir, f)) })),
    ...(await readdir(join(p.dir, 'live-db-copy'))).map(async (f) => ({ name: `live copy of ${f}`, bytes: await readFile(join(p.dir, 'live-db-copy', f)) })),
  ]);
  assert.deepEqual(hitsIn(db, p.needles), [], 'the database holds a secret');
  const copy = join(p.dir, 'data-dir-copy');
  await rm(copy, { recursive: true, force: true });
  await cp(p.dataDir, copy, { recursive: true });
  const all = await Promise.all((await filesUnder(copy)).map(async (f) => ({ name: f.slice(copy.length + 1), bytes: await readFile(f) })));
  assert.ok(
    all.some((f) => f.name === join('pki', 'ca-key.pem')),
    'the copy has the CA key file',
  );
  assert.deepEqual(hitsIn(all, p.needles), [], 'the data directory holds a secret');
  assert.ok(!all.some((f) => f.name === 'secrets.key'), 'no key file inside DIR');
}

/** Started again with the key: the sealed secrets open and do their work. */
async function assertSecretsWork(p: Planted): Promise<void> {
  const hub = await startTestHub({ dataDir: p.dataDir, port: p.port });
  hubs.push(hub);
  assert.equal(await servedFingerprint(hub), p.fingerprint, 'TLS served with the same certificate and key');
  const agent = await startJobAgent({ hubUrl: hub.url, stateDir: p.agentState, answer: (job, res) => succeed(job, res) });
  agents.push(agent);
  await agent.waitConnected();
  const rb = await hub.api('POST', '/api/v1/stacks/sec/rollback', { to: 1 });
  assert.equal(rb.status, 202, JSON.stringify(rb.json));
  assert.equal((await rolloutDone(hub, 'sec', rb.json.rollout)).state, 'succeeded');
  assert.equal(agent.deliveries.at(-1)!.job.secrets.env.TOKEN, p.secretEnv, "revision 1's sealed secret env reaches the agent after the restart");
  const sent = await hub.api('POST', `/api/v1/alert-receivers/${p.receiverId}/test`);
  assert.equal(sent.status, 200, JSON.stringify(sent.json));
  const delivery = p.hook.seen.at(-1)!;
  assert.match(delivery.path, /^\/hook-[0-9a-f]{24}$/);
  assert.match(String(delivery.headers.authorization), /^Bearer receiver-token-[0-9a-f]{24}$/, "the receiver's sealed header opened");
  const regs = await hub.api('GET', '/api/v1/registries');
  assert.equal(regs.json.length, 1);
  await hub.stop({ keepData: true });
  hubs.splice(hubs.indexOf(hub), 1);
  await agent.stop();
  agents.splice(agents.indexOf(agent), 1);
}

let filePlanted: Planted | undefined;

test('master key in the default file beside DIR: neither the database nor a copy of DIR holds a secret; restarted, they work', async () => {
  filePlanted = await plant('file');
  await assertNothingFound(filePlanted);
  await assertSecretsWork(filePlanted);
});

test('master key from DOCKFLEET_MASTER_KEY: nothing found at rest, and it works again from the same variable', async () => {
  const p = await plant('env');
  await assertNothingFound(p);
  await offerKey('env', p.key, p.dir);
  await assertSecretsWork(p);
});

test('master key from a systemd credential directory: nothing found at rest, and it works again', async () => {
  const p = await plant('credential');
  await assertNothingFound(p);
  await offerKey('credential', p.key, p.dir);
  await assertSecretsWork(p);
});

test('a wrong key is refused with a clear error (CLI and in-process) and nothing on disk changes', async () => {
  const p = filePlanted!;
  for (const k of ENV_KEYS) delete process.env[k];
  const before = await snapshot(p.dir);
  const wrong = join(p.dir, 'wrong.key');
  await writeFile(wrong, randomBytes(32), { mode: 0o600 });
  const afterWrite = await snapshot(p.dir);
  const proc = spawnDockfleet(['hub', '--data', p.dataDir, '--listen', '127.0.0.1:0', '--master-key', wrong]);
  const { code } = await proc.exited;
  assert.notEqual(code, 0);
  assert.match(proc.stderr(), /dockfleet hub: the master key given does not open .*ca-key\.pem: it is not the key this data directory was sealed under/);
  assert.ok(!proc.stderr().includes((await readFile(wrong)).toString('base64')), 'the key is not echoed');
  process.env.DOCKFLEET_MASTER_KEY = randomBytes(32).toString('base64');
  await assert.rejects(startTestHub({ dataDir: p.dataDir, port: p.port }), { code: 'master_key_mismatch' });
  assert.deepEqual(await snapshot(p.dir), afterWrite, 'a refused start changed something');
  await rm(wrong);
  assert.deepEqual(await snapshot(p.dir), before);
});

test('no key to be found for a sealed DIR: refused as missing, and no new key is made', async () => {
  const p = filePlanted!;
  for (const k of ENV_KEYS) delete process.env[k];
  const keyFile = defaultMasterKeyFile(p.dataDir);
  const aside = join(p.dir, 'kept-aside.key');
  await rename(keyFile, aside);
  const before = await snapshot(p.dir);
  try {
    await assert.rejects(startTestHub({ dataDir: p.dataDir, port: p.port }), { code: 'master_key_missing' });
    assert.deepEqual(await snapshot(p.dir), before);
    // Given explicitly, from where it was kept: the hub starts.
    process.env.DOCKFLEET_MASTER_KEY_FILE = aside;
    const hub = await startTestHub({ dataDir: p.dataDir, port: p.port });
    await hub.stop({ keepData: true });
  } finally {
    delete process.env.DOCKFLEET_MASTER_KEY_FILE;
    await rename(aside, keyFile);
  }
});

test('a key file open to others (0644), or of the wrong size, is refused', async () => {
  const p = filePlanted!;
  for (const k of ENV_KEYS) delete process.env[k];
  const keyFile = defaultMasterKeyFile(p.dataDir);
  await chmod(keyFile, 0o644);
  try {
    const proc = spawnDockfleet(['hub', '--data', p.dataDir, '--listen', '127.0.0.1:0']);
    assert.notEqual((await proc.exited).code, 0);
    assert.match(proc.stderr(), /is open to group or others \(mode 0644\): run chmod 600 /);
    await assert.rejects(startTestHub({ dataDir: p.dataDir, port: p.port }), { code: 'master_key_unsafe' });
  } finally {
    await chmod(keyFile, 0o600);
  }
  const short = join(p.dir, 'short.key');
  await writeFile(short, randomBytes(31), { mode: 0o600 });
  process.env.DOCKFLEET_MASTER_KEY_FILE = short;
  try {
    await assert.rejects(startTestHub({ dataDir: p.dataDir, port: p.port }), (err: Error & { code?: string }) => {
      assert.equal(err.code, 'master_key_unsafe');
      assert.match(err.message, /must hold exactly 32 bytes, not 31/);
      return true;
    });
  } finally {
    delete process.env.DOCKFLEET_MASTER_KEY_FILE;
  }
  const inside = join(p.dataDir, 'inside.key');
  await writeFile(inside, randomBytes(32), { mode: 0o600 });
  try {
    const proc = spawnDockfleet(['hub', '--data', p.dataDir, '--listen', '127.0.0.1:0', '--master-key', inside]);
    assert.notEqual((await proc.exited).code, 0);
    assert.match(proc.stderr(), /is inside the data directory/);
  } finally {
    await rm(inside);
  }
});

test("an old hub's DIR/secrets.key and plain PEM keys: moved out and sealed on start, secrets still open; two different keys stop the hub", async () => {
  const p = filePlanted!;
  for (const k of ENV_KEYS) delete process.env[k];
  const keyFile = defaultMasterKeyFile(p.dataDir);
  const box = new SecretBox(p.key);
  // Put DIR back the way hubs before this kept it: the key inside, the private keys in plain PEM.
  for (const [file, context] of [
    ['ca-key.pem', 'hub-pki:ca-key'],
    ['server-key.pem', 'hub-pki:server-key'],
  ] as const) {
    const path = join(p.dataDir, 'pki', file);
    await writeFile(path, box.openText((await readFile(path, 'utf8')).trim(), context), { mode: 0o600 });
  }
  await rename(keyFile, join(p.dataDir, 'secrets.key'));

  // A different key already at the target: refused, nothing moved.
  await writeFile(keyFile, randomBytes(32), { mode: 0o600 });
  const before = await snapshot(p.dir);
  await assert.rejects(startTestHub({ dataDir: p.dataDir, port: p.port }), { code: 'master_key_mismatch' });
  assert.deepEqual(await snapshot(p.dir), before);
  await rm(keyFile);

  const hub = await startTestHub({ dataDir: p.dataDir, port: p.port });
  await hub.stop({ keepData: true });
  await assert.rejects(stat(join(p.dataDir, 'secrets.key')), { code: 'ENOENT' }, 'the old key file is gone from DIR');
  assert.equal((await stat(keyFile)).mode & 0o777, 0o600);
  assert.deepEqual(await readFile(keyFile), p.key, 'the same key, moved');
  for (const file of ['ca-key.pem', 'server-key.pem']) {
    const text = await readFile(join(p.dataDir, 'pki', file), 'utf8');
    assert.ok(!text.includes('PRIVATE KEY'), `${file} is sealed`);
    assert.equal((await stat(join(p.dataDir, 'pki', file))).mode & 0o777, 0o600);
  }
  assert.deepEqual(
    (await readdir(join(p.dataDir, 'pki'))).filter((f) => f.endsWith('.tmp')),
    [],
    'no temporary file left',
  );
  await assertNothingFound(p);
  await assertSecretsWork(p);
});
