/**
 * Hub backup and restore end to end: a hub process on a fixed port, a private engine and a real
 * `dockfleet agent` enrolled to it. State is made (a user with a password, an API token, a user
 * client certificate, a stack deployed with its jobs, audit rows), `dockfleet backup` runs while
 * a client keeps calling the API, the hub stops, `dockfleet restore` fills a fresh directory and a
 * hub starts on it at the same address: the same agent comes back on its identity with no new
 * code, and everything checks out. Then the faults (each a clear error, nothing written) and the
 * schedule (archives per period, the newest N kept).
 */
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { generateKeyPairSync, randomBytes } from 'node:crypto';
import { existsSync } from 'node:fs';
import { mkdir, mkdtemp, readdir, readFile, rm, writeFile } from 'node:fs/promises';
import https from 'node:https';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, test } from 'node:test';
import { brotliCompressSync, brotliDecompressSync } from 'node:zlib';
import Database from 'better-sqlite3';
import { Decrypter, Encrypter, generateIdentity, identityToRecipient } from 'age-encryption';
import { extract as tarExtract, pack as tarPack } from 'tar-stream';
import { BUSYBOX_IMAGE, startEngines, stopEngines, type TestEngine } from './support/engines.ts';
import { waitFor } from './support/hub-fixture.ts';
import { freePort, spawnDockfleet, type DockfleetProcess } from './support/processes.ts';

const PASSPHRASE = 'correct horse battery staple';
let engine: TestEngine | undefined;
let hubProc: DockfleetProcess | undefined;
let agent: DockfleetProcess | undefined;
let work: string;
let hubDir: string;
let listen: string;
let archive: string;
const mounts: string[] = [];

interface CliResult {
  code: number | null;
  stdout: string;
  stderr: string;
}
async function run(args: string[], env: NodeJS.ProcessEnv = {}): Promise<CliResult> {
  const p = spawnDockfleet(args, { DOCKFLEET_HUB: undefined, DOCKFLEET_TOKEN: undefined, DOCKFLEET_BACKUP_PASSPHRASE: undefined, ...env });
  const { code } = await p.exited;
  return { code, stdout: p.stdout(), stderr: p.stderr() };
}
const cli = (dir: string, ...args: string[]): Promise<CliResult> => run([...args, '--data', dir]);
const lastLine = (r: CliResult): string => r.stdout.trimEnd().split('\n').at(-1)!;

async function startHub(dir: string, extra: string[] = [], env: NodeJS.ProcessEnv = {}): Promise<DockfleetProcess> {
  const p = spawnDockfleet(['hub', '--data', dir, '--listen', listen, ...extra], env);
  await p.waitForLine(/^hub ready /, 30_000);
  return p;
}

interface Call {
  status: number;
  json: any;
  headers: Record<string, string | string[] | undefined>;
}
async function call(dir: string, method: string, path: string, opts: { token?: string; body?: unknown; cookie?: string; cert?: { cert: string; key: string } } = {}): Promise<Call> {
  const ca = await readFile(join(dir, 'pki', 'ca.pem'), 'utf8');
  const payload = opts.body === undefined ? undefined : Buffer.from(JSON.stringify(opts.body));
  return new Promise((resolve, reject) => {
    const req = https.request(
      `https://${listen}${path}`,
      {
        method,
        ca,
        ...(opts.cert ?? {}),
        headers: {
          ...(opts.token ? { authorization: `Bearer ${opts.token}` } : {}),
          ...(opts.cookie ? { cookie: opts.cookie } : {}),
          ...(payload ? { 'content-type': 'application/json' } : {}),
        },
      },
      (res) => {
        const chunks: Buffer[] = [];
        res.on('data', (c: Buffer) => chunks.push(c));
        res.on('end', () => {
          const text = Buffer.concat(chunks).toString('utf8');
          let json: unknown = text;
          try {
            json = JSON.parse(text);
          } catch {
            /* not JSON */
          }
          resolve({ status: res.statusCode ?? 0, json, headers: res.headers });
        });
      },
    );
    req.on('error', reject);
    req.end(payload);
  });
}

async function restore(file: string, target: string, env: NodeJS.ProcessEnv = { DOCKFLEET_BACKUP_PASSPHRASE: PASSPHRASE }, extra: string[] = []): Promise<CliResult> {
  return run(['restore', file, '--data', target, ...extra], env);
}

/** The tar inside an archive: decrypted, and decompressed when it is brotli (format 2; format 1 is a plain tar). */
async function tarOf(from: string): Promise<{ tar: Buffer; compressed: boolean }> {
  const dec = new Decrypter();
  dec.addPassphrase(PASSPHRASE);
  const plain = Buffer.from(await dec.decrypt(await readFile(from)));
  const compressed = plain.subarray(257, 262).toString('latin1') !== 'ustar';
  return { tar: compressed ? brotliDecompressSync(plain) : plain, compressed };
}

/**
 * Decrypts an archive, lets EDIT change its members, and encrypts it again (a crafted archive),
 * compressed as it was unless COMPRESS says otherwise (false: a plain tar, as format 1 wrote it).
 */
async function craft(from: string, to: string, edit: (members: Map<string, Buffer>) => void, compress?: boolean): Promise<void> {
  const { tar: plain, compressed } = await tarOf(from);
  const members = new Map<string, Buffer>();
  const ex = tarExtract();
  const reading = (async () => {
    for await (const entry of ex) {
      const chunks: Buffer[] = [];
      for await (const c of entry) chunks.push(c as Buffer);
      members.set(entry.header.name, Buffer.concat(chunks));
    }
  })();
  ex.end(Buffer.from(plain));
  await reading;
  edit(members);
  const pk = tarPack();
  for (const [name, bytes] of members) pk.entry({ name, size: bytes.length }, bytes);
  pk.finalize();
  const chunks: Buffer[] = [];
  for await (const c of pk) chunks.push(c as Buffer);
  const tar = Buffer.concat(chunks);
  const enc = new Encrypter();
  enc.setPassphrase(PASSPHRASE);
  enc.setScryptWorkFactor(12);
  await writeFile(to, await enc.encrypt((compress ?? compressed) ? brotliCompressSync(tar) : tar));
}

function editManifest(members: Map<string, Buffer>, change: (m: any) => void): void {
  const manifest = JSON.parse(members.get('manifest.json')!.toString('utf8'));
  change(manifest);
  members.set('manifest.json', Buffer.from(JSON.stringify(manifest)));
}

async function tmpfs(name: string, size: string): Promise<string> {
  const dir = join(work, name);
  await mkdir(dir);
  execFileSync('mount', ['-t', 'tmpfs', '-o', `size=${size},mode=0700`, 'tmpfs', dir]);
  mounts.push(dir);
  return dir;
}

before(async () => {
  [engine] = await startEngines(1, { prefix: 'hubbackup' });
  work = await mkdtemp(join(tmpdir(), 'dockfleet-hub-backup-'));
  hubDir = join(work, 'hub');
  listen = `127.0.0.1:${await freePort()}`;
  archive = join(work, 'hub.age');
  hubProc = await startHub(hubDir);
  const code = lastLine(await cli(hubDir, 'enroll', 'n1'));
  agent = spawnDockfleet(['agent', '--hub', `https://${listen}`, '--code', code, '--state', join(work, 'agent'), '--docker', engine!.dockerHost, '--policy', join(work, 'no-policy.json')]);
  await agent.waitForLine(/agent n1 connected/, 30_000);
});

after(async () => {
  await agent?.stop();
  await hubProc?.stop();
  for (const dir of mounts.reverse()) {
    try {
      execFileSync('umount', [dir]);
    } catch {
      /* already gone */
    }
  }
  if (engine) await stopEngines([engine]);
  if (work) await rm(work, { recursive: true, force: true });
});

test('a running hub backed up, restored into a fresh directory at the same address: the agent, users, tokens, client certificates, stacks, jobs and the audit chain come back', {
  timeout: 300_000,
}, async () => {
  const admin = (await readFile(join(hubDir, 'admin.token'), 'utf8')).trim();
  const made = await call(hubDir, 'POST', '/api/v1/users', { token: admin, body: { name: 'olga', role: 'admin', password: 'a long password 42' } });
  assert.equal(made.status, 201, JSON.stringify(made.json));
  const userToken = made.json.token as string;
  const personal = await call(hubDir, 'POST', '/api/v1/tokens', { token: userToken, body: { name: 'ci' } });
  assert.equal(personal.status, 201, JSON.stringify(personal.json));
  const { publicKey, privateKey } = generateKeyPairSync('ec', { namedCurve: 'P-256' });
  const cert = await call(hubDir, 'POST', '/api/v1/client-certs', { token: userToken, body: { publicKey: publicKey.export({ type: 'spki', format: 'pem' }) } });
  assert.equal(cert.status, 201, JSON.stringify(cert.json));
  const clientCert = { cert: cert.json.certPem as string, key: privateKey.export({ type: 'pkcs8', format: 'pem' }) as string };

  const compose = join(work, 'web.yml');
  await writeFile(compose, ['services:', '  app:', `    image: ${BUSYBOX_IMAGE}`, "    command: ['sleep', '3600']", ''].join('\n'));
  const deploy = await cli(hubDir, 'stack', 'deploy', 'web', '-f', compose, '--node', 'n1', '--wait');
  assert.equal(deploy.code, 0, deploy.stderr);
  const jobId = lastLine(deploy);
  const before = { jobs: JSON.parse((await cli(hubDir, 'jobs', '--json')).stdout), history: JSON.parse((await cli(hubDir, 'stack', 'history', 'web', '--json')).stdout) };
  const hubInfo = JSON.parse(await readFile(join(hubDir, 'hub.json'), 'utf8'));

  // A client keeps calling the API for as long as the backup runs: none of its calls may fail.
  let calling = true;
  const answers: number[] = [];
  const client = (async () => {
    while (calling) answers.push((await call(hubDir, 'GET', '/api/v1/nodes', { token: personal.json.token })).status);
  })();
  const backup = await run(['backup', '--data', hubDir, '--out', archive], { DOCKFLEET_BACKUP_PASSPHRASE: PASSPHRASE });
  calling = false;
  await client;
  assert.equal(backup.code, 0, backup.stderr);
  assert.match(backup.stdout, /backup written: .*master key included/);
  assert.ok(answers.length > 0 && answers.every((s) => s === 200), `the hub kept answering during the backup: ${answers.join(',')}`);
  assert.deepEqual(
    (await readdir(work)).filter((n) => n.startsWith('.hub.age')),
    [],
    'no temp or staging file left',
  );
  const raw = await readFile(archive);
  for (const secret of [admin, userToken, 'a long password 42', (await readFile(join(work, 'hub.master.key'))).toString('latin1')]) {
    assert.equal(raw.includes(Buffer.from(secret, 'latin1')), false, 'the archive is encrypted: no secret shows in it');
  }

  await hubProc!.stop();
  hubProc = undefined;
  const restored = join(work, 'restored');
  const res = await restore(archive, restored);
  assert.equal(res.code, 0, res.stderr);
  assert.match(res.stdout, /audit chain holds/);
  assert.ok(existsSync(join(work, 'restored.master.key')), 'the master key is written beside the new directory');

  const connectsBefore = agent!
    .stdout()
    .split('\n')
    .filter((l) => /agent n1 connected/.test(l)).length;
  hubProc = await startHub(restored);
  await waitFor(
    () =>
      agent!
        .stdout()
        .split('\n')
        .filter((l) => /agent n1 connected/.test(l)).length > connectsBefore,
    30_000,
    'the agent reconnecting on its existing identity',
    200,
  );
  const nodes = JSON.parse((await cli(restored, 'nodes', '--json')).stdout) as Array<{ name: string; status: string }>;
  assert.deepEqual(
    nodes.map((n) => [n.name, n.status]),
    [['n1', 'online']],
    'the same node, online, no re-enrollment',
  );
  assert.doesNotMatch(agent!.stderr(), /code_used|code_invalid|code_expired|node_revoked|key_retired/, 'no enrollment was attempted or refused');

  assert.equal(JSON.parse(await readFile(join(restored, 'hub.json'), 'utf8')).caDigest, hubInfo.caDigest, "the same CA: the agent's pinned digest still holds");
  const signIn = await call(restored, 'POST', '/api/v1/session', { body: { username: 'olga', password: 'a long password 42' } });
  assert.equal(signIn.status, 200, 'the user signs in with the same password');
  assert.equal((await call(restored, 'GET', '/api/v1/nodes', { token: personal.json.token })).status, 200, 'the API token works');
  assert.equal((await call(restored, 'GET', '/api/v1/nodes', { token: admin })).status, 200, 'admin.token works');
  const ping = await call(restored, 'GET', '/docker/nodes/n1/_ping', { cert: clientCert });
  assert.equal(ping.status, 200, `the user's client certificate reaches the node: ${JSON.stringify(ping.json)}`);

  assert.deepEqual(JSON.parse((await cli(restored, 'stack', 'history', 'web', '--json')).stdout), before.history, 'the stack and its revisions');
  const jobs = JSON.parse((await cli(restored, 'jobs', '--json')).stdout) as Array<{ id: string; state: string }>;
  assert.deepEqual(jobs.map((j) => [j.id, j.state]).sort(), (before.jobs as Array<{ id: string; state: string }>).map((j) => [j.id, j.state]).sort());
  assert.ok(jobs.some((j) => j.id === jobId && j.state === 'succeeded'));
  const verify = await cli(restored, 'audit', 'verify');
  assert.equal(verify.code, 0, verify.stderr);
  assert.match(verify.stdout, /^ok: [1-9]\d* audit rows/);
});

test('faults: wrong passphrase, a flipped byte, a truncated or foreign file, a newer format or schema, a non-empty target: each a clear error and nothing written', { timeout: 240_000 }, async () => {
  assert.ok(existsSync(archive), 'needs the archive of the first test');
  const target = join(work, 'faulty');
  const nothingWritten = async (what: string): Promise<void> => {
    assert.equal(existsSync(target), false, `${what}: the target was not created`);
    assert.equal(existsSync(`${target}.master.key`), false, `${what}: no key written`);
    assert.deepEqual(
      (await readdir(work)).filter((n) => n.startsWith('.faulty')),
      [],
      `${what}: no temp folder left`,
    );
  };
  const expectFailure = async (file: string, code: string, pattern: RegExp, what: string, env?: NodeJS.ProcessEnv): Promise<void> => {
    const r = await restore(file, target, env);
    assert.equal(r.code, 1, `${what}: ${r.stdout}`);
    assert.match(r.stderr, new RegExp(`\\[${code}\\]`), `${what}: ${r.stderr}`);
    assert.match(r.stderr, pattern, what);
    await nothingWritten(what);
  };

  await expectFailure(archive, 'backup_key_wrong', /passphrase does not open/, 'wrong passphrase', { DOCKFLEET_BACKUP_PASSPHRASE: 'not the passphrase' });

  const bytes = await readFile(archive);
  const flipped = Buffer.from(bytes);
  flipped[Math.floor(flipped.length / 2)]! ^= 0x01;
  await writeFile(join(work, 'flipped.age'), flipped);
  await expectFailure(join(work, 'flipped.age'), 'backup_damaged', /damaged/, 'a flipped byte');

  await writeFile(join(work, 'truncated.age'), bytes.subarray(0, bytes.length - 1000));
  await expectFailure(join(work, 'truncated.age'), 'backup_damaged', /damaged or truncated/, 'a truncated archive');

  await writeFile(join(work, 'foreign.tar'), randomBytes(4096));
  await expectFailure(join(work, 'foreign.tar'), 'backup_damaged', /not a dockfleet backup/, 'a foreign file');

  const notOurs = new Encrypter();
  notOurs.setPassphrase(PASSPHRASE);
  notOurs.setScryptWorkFactor(12);
  await writeFile(join(work, 'other.age'), await notOurs.encrypt('just some text, not a tar'));
  await expectFailure(join(work, 'other.age'), 'backup_damaged', /not a dockfleet backup/, 'an age file that is not our archive');

  await craft(archive, join(work, 'newer-format.age'), (m) => editManifest(m, (x) => (x.formatVersion = 3)));
  await expectFailure(join(work, 'newer-format.age'), 'backup_too_new', /newer dockfleet/, 'a newer archive format');

  await craft(archive, join(work, 'newer-schema.age'), (m) => editManifest(m, (x) => (x.schemaVersion = '29991231T000000-from-the-future.sql')));
  await expectFailure(join(work, 'newer-schema.age'), 'backup_too_new', /newer dockfleet/, 'a newer schema');

  await craft(archive, join(work, 'extra-member.age'), (m) => m.set('data/../../escape', Buffer.from('x')));
  await expectFailure(join(work, 'extra-member.age'), 'backup_damaged', /may not be restored|does not list/, 'a member outside the manifest, with a path trick');

  await craft(archive, join(work, 'edited-member.age'), (m) => m.set('data/admin.token', Buffer.from('dft_forged\n'.padEnd(m.get('data/admin.token')!.length, 'x'))));
  await expectFailure(join(work, 'edited-member.age'), 'backup_damaged', /SHA-256/, 'a member edited after the manifest was made');

  await mkdir(target);
  await writeFile(join(target, 'keep-me'), 'mine');
  const busy = await restore(archive, target);
  assert.equal(busy.code, 1);
  assert.match(busy.stderr, /\[conflict\]/);
  assert.equal(await readFile(join(target, 'keep-me'), 'utf8'), 'mine', 'a non-empty target is left as it was');
  await rm(target, { recursive: true });
});

test('a full disk while writing a backup and while restoring: a clear error, no partial file', { timeout: 240_000 }, async () => {
  assert.ok(existsSync(archive), 'needs the archive of the first test');
  // A still copy of the first test's hub (restored from its archive), so the database cannot grow
  // between measuring it and backing it up: the second disk has room for the copy and half the
  // (compressed) archive.
  const dataDir = join(work, 'still');
  const restored = await restore(archive, dataDir);
  assert.equal(restored.code, 0, restored.stderr);
  const live = new Database(join(dataDir, 'dockfleet.db'), { readonly: true, fileMustExist: true });
  const copySize = (live.pragma('page_count', { simple: true }) as number) * (live.pragma('page_size', { simple: true }) as number);
  live.close();
  // A small hub's archive compresses to a few KiB, too little to overflow a disk on its own: a file
  // of incompressible bytes in DIR (every file of DIR goes into the archive) makes it at least
  // that big. The copy needs a few pages more than its own (the staging folder, SQLite's journal
  // while it copies): 16 KiB of room for those; then half the incompressible file, so the archive
  // cannot fit beside the copy.
  const incompressible = 512 * 1024;
  await writeFile(join(dataDir, 'incompressible.bin'), randomBytes(incompressible));
  const slack = 16 * 1024;
  for (const [size, stage] of [
    ['128k', /for the database copy/],
    [`${Math.ceil((copySize + slack + incompressible / 2) / 4096) * 4}k`, /no space left writing/],
  ] as const) {
    const small = await tmpfs(`small-out-${size}`, size);
    const b = await run(['backup', '--data', dataDir, '--out', join(small, 'hub.age')], { DOCKFLEET_BACKUP_PASSPHRASE: PASSPHRASE });
    assert.equal(b.code, 1, b.stdout);
    assert.match(b.stderr, /\[insufficient_storage\]/);
    assert.match(b.stderr, stage);
    assert.deepEqual(await readdir(small), [], 'nothing left on the full disk');
  }

  const tiny = await tmpfs('small-restore', '300k');
  const r = await restore(archive, join(tiny, 'hub'));
  assert.equal(r.code, 1, r.stdout);
  assert.match(r.stderr, /\[insufficient_storage\]/);
  assert.deepEqual(await readdir(tiny), [], 'no folder, no key, no temp folder');
});

test('scheduled backups: a hub with a short period writes archives to an age recipient and keeps only N; the newest restores with the identity', { timeout: 240_000 }, async () => {
  await hubProc?.stop();
  hubProc = undefined;
  const backups = join(work, 'scheduled');
  await mkdir(backups);
  const identity = await generateIdentity();
  const recipient = await identityToRecipient(identity);
  await writeFile(join(work, 'identity.txt'), `${identity}\n`, { mode: 0o600 });
  hubProc = await startHub(join(work, 'restored'), ['--backup-every', '2s', '--backup-dir', backups, '--backup-keep', '2', '--backup-recipient', recipient]);
  await waitFor(() => (hubProc!.stderr().match(/scheduled hub backup written/g) ?? []).length >= 4, 60_000, 'four scheduled backups', 250);
  const files = (await readdir(backups)).filter((n) => !n.startsWith('.'));
  assert.equal(files.length, 2, `only the newest two are kept: ${files.join(', ')}`);
  assert.ok(files.every((n) => /^dockfleet-hub-\d{8}T\d{9}Z\.age$/.test(n)));
  await hubProc.stop();
  hubProc = undefined;
  const r = await restore(join(backups, files.sort().at(-1)!), join(work, 'from-schedule'), {}, ['--identity', join(work, 'identity.txt'), '--master-key', join(work, 'scheduled.key')]);
  assert.equal(r.code, 0, r.stderr);
  assert.match(r.stdout, /audit chain holds/);
  assert.ok(existsSync(join(work, 'from-schedule', 'pki', 'ca.pem')));
});

test('archives are format 2, brotli inside the encryption (smaller than the data); a format-1 archive (a plain tar) still restores; a manifest that misstates the compression is refused', {
  timeout: 240_000,
}, async () => {
  assert.ok(existsSync(archive), 'needs the archive of the first test');
  const { tar, compressed } = await tarOf(archive);
  assert.equal(compressed, true, 'the tar is compressed inside the encryption');
  const manifest = await firstMember(tar);
  assert.equal(manifest.formatVersion, 2);
  assert.equal(manifest.compression, 'brotli');
  const total = (manifest.members as Array<{ size: number }>).reduce((sum, m) => sum + m.size, 0);
  const size = (await readFile(archive)).length;
  assert.ok(size < total / 2, `the archive (${size} bytes) is well under its members (${total} bytes)`);

  // Format 1, as the first version wrote it: no compression field, the tar as it is.
  const format1 = join(work, 'format-1.age');
  await craft(
    archive,
    format1,
    (m) =>
      editManifest(m, (x) => {
        x.formatVersion = 1;
        delete x.compression;
      }),
    false,
  );
  assert.equal((await tarOf(format1)).compressed, false);
  const r = await restore(format1, join(work, 'from-format-1'), undefined, ['--master-key', join(work, 'format-1.key')]);
  assert.equal(r.code, 0, r.stderr);
  assert.match(r.stdout, /audit chain holds/);
  assert.ok(existsSync(join(work, 'from-format-1', 'dockfleet.db')));

  for (const [name, edit, compress] of [
    ['says-brotli-is-plain', (x: any) => (x.compression = 'none'), true],
    ['says-plain-is-brotli', () => {}, false],
    ['format-1-names-brotli', (x: any) => (x.formatVersion = 1), true],
  ] as const) {
    const file = join(work, `${name}.age`);
    await craft(archive, file, (m) => editManifest(m, edit), compress);
    const bad = await restore(file, join(work, `from-${name}`));
    assert.equal(bad.code, 1, `${name}: ${bad.stdout}`);
    assert.match(bad.stderr, /backup_damaged|compress/, name);
    assert.equal(existsSync(join(work, `from-${name}`)), false, `${name}: nothing written`);
  }
});

test('a scheduled passphrase backup runs off the event loop: /healthz sampled every 50 ms never waits half as long as the passphrase scrypt blocks a loop', { timeout: 240_000 }, async () => {
  await hubProc?.stop();
  hubProc = undefined;
  const dir = join(work, 'busy-hub');
  const backups = join(work, 'scheduled-passphrase');
  await mkdir(backups);
  // An archive "just written": the next one is due one period after it, once the hub is up and
  // sampled (a hub starting beside the suite's other files has taken over 8 s).
  const every = 20_000;
  const placeholder = join(backups, 'dockfleet-hub-20000101T000000000Z.age');
  await writeFile(placeholder, 'placeholder');
  const due = Date.now() + every;
  hubProc = await startHub(dir, ['--backup-every', `${every / 1000}s`, '--backup-dir', backups, '--backup-keep', '5'], { DOCKFLEET_BACKUP_PASSPHRASE: PASSPHRASE });
  const ca = await readFile(join(dir, 'pki', 'ca.pem'), 'utf8');
  const agentKeepAlive = new https.Agent({ keepAlive: true, maxSockets: 1, ca });
  const samples: Array<{ at: number; ms: number }> = [];
  const health = (): Promise<number> =>
    new Promise((resolve, reject) => {
      const t = performance.now();
      https
        .get(`https://${listen}/healthz`, { agent: agentKeepAlive }, (res) => {
          res.resume();
          res.on('end', () => (res.statusCode === 200 ? resolve(performance.now() - t) : reject(new Error(`healthz ${res.statusCode}`))));
        })
        .on('error', reject);
    });
  try {
    const started = Date.now();
    assert.ok(started < due - 2_000, `sampling starts before the backup is due (${due - started} ms to go)`);
    let written = 0;
    while (Date.now() < started + 60_000) {
      const at = Date.now();
      samples.push({ at, ms: await health() });
      if (written === 0 && /scheduled hub backup written/.test(hubProc.stderr())) written = Date.now();
      if (written !== 0 && Date.now() > written + 500) break;
      await new Promise((r) => setTimeout(r, Math.max(0, 50 - (Date.now() - at))));
    }
    assert.ok(written !== 0, `the scheduled backup was written: ${hubProc.stderr().slice(-2000)}`);
    const during = samples.filter((s) => s.at >= due - 500 && s.at <= written);
    assert.ok(during.length >= 10, `sampled while the backup ran (${during.length} samples)`);
    // The baseline, measured now under the same load: age's scrypt for one passphrase stanza, on
    // this test's own loop. Were the hub to run it on its loop, a sample would wait about that
    // long (a fixed 200 ms bound failed once on CI, with the other lane running beside it).
    const t = performance.now();
    const onLoop = new Encrypter();
    onLoop.setPassphrase(PASSPHRASE);
    await onLoop.encrypt('x');
    const blocking = performance.now() - t;
    const worst = samples.reduce((max, s) => Math.max(max, s.ms), 0);
    const slow = samples.filter((s) => s.ms >= 200).length;
    assert.ok(
      worst < blocking / 2,
      `every /healthz answered within half the ${Math.round(blocking)} ms the scrypt blocks a loop; the slowest took ${Math.round(worst)} ms (${slow} of ${samples.length} samples over 200 ms, backup ${written - due} ms)`,
    );
  } finally {
    agentKeepAlive.destroy();
    await hubProc.stop();
    hubProc = undefined;
  }
  const files = (await readdir(backups)).filter((n) => n !== 'dockfleet-hub-20000101T000000000Z.age' && !n.startsWith('.'));
  assert.equal(files.length, 1, files.join(', '));
  const r = await restore(join(backups, files[0]!), join(work, 'from-busy'), undefined, ['--master-key', join(work, 'busy.key')]);
  assert.equal(r.code, 0, r.stderr);
});

async function firstMember(tar: Buffer): Promise<any> {
  const ex = tarExtract();
  ex.end(tar);
  for await (const entry of ex) {
    const chunks: Buffer[] = [];
    for await (const c of entry) chunks.push(c as Buffer);
    ex.destroy();
    return JSON.parse(Buffer.concat(chunks).toString('utf8'));
  }
  throw new Error('an empty tar');
}
