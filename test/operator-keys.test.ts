/** Operator keys (issue 13): `dockfleet operator-key create|show|list|revoke` through real CLI
 * processes against a real hub process, the REST API's rules (own keys, admins see all, 409 on a
 * key registered twice, 400 on a malformed one, audited), the local key files (0600 in 0700,
 * never overwritten, a default key), the policy summary naming a host's keys by fingerprint, and
 * the private key never in any API answer or the hub's log. */
import assert from 'node:assert/strict';
import { chmod, mkdtemp, readFile, readdir, rm, stat, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, test } from 'node:test';
import { loadPolicy } from '../src/agent/policy/policy-file.ts';
import { summarisePolicy } from '../src/agent/policy/policy-summary.ts';
import { loadOperatorSigner } from '../src/cli/intent/operator-key-file.ts';
import { generateOperatorKey, verifyBytes } from '../src/lib/intent-keys.ts';
import { operatorKeyFingerprint } from '../src/lib/operator-key-fingerprint.ts';
import { OPERATOR_KEY, decodeIntent, dockerOp } from '../src/protocol/intent.ts';
import { policySummary } from '../src/protocol/policy-summary.ts';
import { NO_ENGINE } from './support/agent-fixture.ts';
import { hubRequest, type HubAnswer } from './support/hub-request.ts';
import { freePort, spawnDockfleet, type DockfleetProcess } from './support/processes.ts';

let dir: string;
let hub: DockfleetProcess;
let hubUrl: string;
let caPem: string;
let caFile: string;
let adminToken: string;
const tokens: Record<string, string> = {};
const processes: DockfleetProcess[] = [];
/** Every answer any test got from the hub, to search for private keys at the end. */
const answers: string[] = [];

async function api(method: string, path: string, user: string | null, body?: unknown): Promise<HubAnswer> {
  const res = await hubRequest(hubUrl, caPem, path, {
    method,
    headers: { authorization: `Bearer ${user === null ? adminToken : tokens[user]!}`, ...(body === undefined ? {} : { 'content-type': 'application/json' }) },
    ...(body === undefined ? {} : { body: typeof body === 'string' ? body : JSON.stringify(body) }),
  });
  answers.push(res.text);
  return res;
}

/** `dockfleet operator-key ARGS` as USER, with ~/.dockfleet at HOME. */
async function cli(home: string, user: string | null, ...args: string[]): Promise<{ code: number | null; stdout: string; stderr: string }> {
  const p = spawnDockfleet(['operator-key', ...args], {
    DOCKFLEET_HOME: home,
    DOCKFLEET_HUB: hubUrl,
    DOCKFLEET_TOKEN: user === null ? adminToken : tokens[user]!,
    DOCKFLEET_CA: caFile,
  });
  const { code } = await p.exited;
  answers.push(p.stdout(), p.stderr());
  return { code, stdout: p.stdout(), stderr: p.stderr() };
}

const home = (name: string): string => join(dir, 'homes', name);
const keyDir = (name: string): string => join(home(name), 'operator-keys');
const pemFiles = async (name: string): Promise<string[]> => (await readdir(keyDir(name)).catch(() => [])).filter((f) => f.endsWith('.pem')).sort();

before(async () => {
  dir = await mkdtemp(join(tmpdir(), 'dockfleet-opkeys-'));
  hub = spawnDockfleet(['hub', '--data', join(dir, 'hub'), '--listen', `127.0.0.1:${await freePort()}`], { DOCKFLEET_LOG_LEVEL: 'debug' });
  processes.push(hub);
  hubUrl = (await hub.waitForLine(/hub ready/)).match(/https:\/\/\S+/)![0];
  caFile = join(dir, 'hub', 'pki', 'ca.pem');
  caPem = await readFile(caFile, 'utf8');
  adminToken = (await readFile(join(dir, 'hub', 'admin.token'), 'utf8')).trim();
  for (const [name, role] of [
    ['alice', 'operator'],
    ['bob', 'viewer'],
    ['carol', 'viewer'],
  ] as const) {
    const res = await api('POST', '/api/v1/users', null, { name, role });
    assert.equal(res.status, 201, res.text);
    tokens[name] = res.json.token;
  }
  assert.equal((await api('PATCH', '/api/v1/users/carol', null, { scoped: true })).status, 200);
});

after(async () => {
  for (const p of processes.reverse()) await p.stop();
  await rm(dir, { recursive: true, force: true });
});

let aliceKey: string;
let aliceId: string;

test('create makes the key here (0600 in a 0700 directory, the first one the default) and registers only its public half', async () => {
  const res = await cli(home('alice'), 'alice', 'create', '--name', 'laptop');
  assert.equal(res.code, 0, res.stderr);
  assert.match(res.stdout, /^ed25519:[A-Za-z0-9_-]{43}\n$/, 'stdout is the public key alone');
  aliceKey = res.stdout.trim();
  aliceId = operatorKeyFingerprint(aliceKey);
  assert.deepEqual(await pemFiles('alice'), [`${aliceId}.pem`]);
  assert.equal((await stat(join(keyDir('alice'), `${aliceId}.pem`))).mode & 0o777, 0o600);
  assert.equal((await stat(keyDir('alice'))).mode & 0o777, 0o700);
  assert.equal((await readFile(join(keyDir('alice'), 'default'), 'utf8')).trim(), aliceId);
  assert.match(await readFile(join(keyDir('alice'), `${aliceId}.pem`), 'utf8'), /^-----BEGIN PRIVATE KEY-----/);

  const listed = await api('GET', '/api/v1/operator-keys', 'alice');
  assert.equal(listed.status, 200);
  assert.deepEqual(
    listed.json.map((k: { id: string; publicKey: string; name: string; user: string; revokedAt: null }) => [k.id, k.publicKey, k.name, k.user, k.revokedAt]),
    [[aliceId, aliceKey, 'laptop', 'alice', null]],
  );
  assert.deepEqual(Object.keys(listed.json[0]).sort(), ['createdAt', 'id', 'name', 'publicKey', 'revokedAt', 'user']);
});

test("show prints the key alone, as a policy file takes it, and the local private key matches the hub's record", async () => {
  const shown = await cli(home('alice'), 'alice', 'show');
  assert.equal(shown.code, 0, shown.stderr);
  assert.equal(shown.stdout, `${aliceKey}\n`);
  assert.match(shown.stdout.trim(), OPERATOR_KEY);
  const policyFile = join(dir, 'policy.json');
  await writeFile(policyFile, JSON.stringify({ signedIntent: { operators: [shown.stdout.trim()], require: 'mutations' } }));
  const policy = await loadPolicy(policyFile);
  assert.deepEqual(policy.signedIntent?.operators, [aliceKey], 'the host policy file accepts what show prints');

  // A signature by the local key verifies against the public key the hub holds.
  const saved = process.env.DOCKFLEET_HOME;
  process.env.DOCKFLEET_HOME = home('alice');
  try {
    const signer = loadOperatorSigner();
    assert.ok(signer);
    const hubRecord = (await api('GET', '/api/v1/operator-keys', 'alice')).json[0].publicKey as string;
    const { wire } = signer.intent('node-a', dockerOp('POST', '/containers/x/stop'), `sha256:${'0'.repeat(64)}`);
    const decoded = decodeIntent(wire);
    assert.ok(decoded.ok);
    assert.equal(verifyBytes(hubRecord, decoded.intent.signedBytes, decoded.intent.signature), true);
  } finally {
    if (saved === undefined) delete process.env.DOCKFLEET_HOME;
    else process.env.DOCKFLEET_HOME = saved;
  }

  // A second key does not replace the first, nor become the default; show ID picks it.
  const second = await cli(home('alice'), 'alice', 'create', '--name', 'ci');
  assert.equal(second.code, 0, second.stderr);
  const secondId = operatorKeyFingerprint(second.stdout.trim());
  assert.deepEqual(await pemFiles('alice'), [`${aliceId}.pem`, `${secondId}.pem`].sort());
  assert.equal((await cli(home('alice'), 'alice', 'show')).stdout, `${aliceKey}\n`, 'several keys: show without an id prints the default');
  assert.equal((await cli(home('alice'), 'alice', 'show', secondId.slice(0, 8))).stdout, second.stdout, 'an id prefix picks a key');
  const none = await cli(home('nobody'), 'alice', 'show');
  assert.equal(none.code, 1);
  assert.match(none.stderr, /no operator key .*operator-key create/);
});

test('list marks which keys are on this machine; revoke keeps the key file unless --delete', async () => {
  const elsewhere = await cli(home('alice-desktop'), 'alice', 'create');
  assert.equal(elsewhere.code, 0, elsewhere.stderr);
  const desktopId = operatorKeyFingerprint(elsewhere.stdout.trim());

  const listed = await cli(home('alice'), 'alice', 'list', '--json');
  assert.equal(listed.code, 0, listed.stderr);
  const rows = JSON.parse(listed.stdout) as Array<{ id: string; name: string; local: boolean; default: boolean; revokedAt: string | null }>;
  assert.equal(rows.length, 3);
  assert.deepEqual(
    rows.find((r) => r.id === aliceId),
    { ...rows.find((r) => r.id === aliceId), local: true, default: true, name: 'laptop' },
  );
  assert.equal(rows.find((r) => r.id === desktopId)?.local, false, 'a key made on another machine is not here');
  const table = await cli(home('alice'), 'alice', 'list');
  assert.match(table.stdout, /^ID\s+NAME\s+CREATED\s+STATE\s+HERE/);
  assert.match(table.stdout, new RegExp(`${aliceId}\\s+laptop\\s+\\S+\\s+current\\s+yes \\(default\\)`));

  const secondId = rows.find((r) => r.name === 'ci')!.id;
  const revoked = await cli(home('alice'), 'alice', 'revoke', secondId);
  assert.equal(revoked.code, 0, revoked.stderr);
  assert.match(revoked.stdout, /still accept it until it is removed there/);
  assert.match(revoked.stdout, /is kept \(--delete removes it\)/);
  assert.ok((await pemFiles('alice')).includes(`${secondId}.pem`));
  const record = (await api('GET', '/api/v1/operator-keys', 'alice')).json.find((k: { id: string }) => k.id === secondId);
  assert.ok(record.revokedAt !== null && !Number.isNaN(Date.parse(record.revokedAt)));
  const again = await cli(home('alice'), 'alice', 'revoke', secondId);
  assert.equal(again.code, 1);
  assert.match(again.stderr, /revoked already \[invalid_state\]/);

  const deleted = await cli(home('alice-desktop'), 'alice', 'revoke', desktopId, '--delete');
  assert.equal(deleted.code, 0, deleted.stderr);
  assert.deepEqual(await pemFiles('alice-desktop'), []);
  await assert.rejects(stat(join(keyDir('alice-desktop'), 'default')), 'the default that named it goes too');
});

test('a key registered twice is a 409, whoever registers it; a malformed key is a clear 400 that echoes nothing', async () => {
  const dup = await api('POST', '/api/v1/operator-keys', 'bob', { publicKey: aliceKey, name: 'mine now' });
  assert.equal(dup.status, 409);
  assert.equal(dup.json.error.code, 'conflict');
  const revokedId = (await api('GET', '/api/v1/operator-keys', 'alice')).json.find((k: { revokedAt: string | null }) => k.revokedAt !== null);
  assert.equal((await api('POST', '/api/v1/operator-keys', 'alice', { publicKey: revokedId.publicKey })).status, 409, 'a revoked key cannot come back');

  const pair = generateOperatorKey();
  for (const publicKey of ['ed25519:short', `ssh-ed25519 ${pair.publicKey.slice(8)}`, pair.privateKeyPem, `${pair.publicKey}x`]) {
    const res = await api('POST', '/api/v1/operator-keys', 'bob', { publicKey, name: 'bad' });
    assert.equal(res.status, 400, publicKey);
    assert.equal(res.json.error.code, 'validation_failed');
    assert.match(res.json.error.message, /^publicKey: an operator key is "ed25519:" followed by 43 base64url characters/);
  }
  const extra = await api('POST', '/api/v1/operator-keys', 'bob', { publicKey: pair.publicKey, privateKey: pair.privateKeyPem });
  assert.equal(extra.status, 400, 'a private key sent along is refused, not stored');
  assert.ok(!extra.text.includes(pair.privateKeyPem.split('\n')[1]!));
  assert.equal((await api('POST', '/api/v1/operator-keys', 'bob', '{"publicKey":')).json.error.code, 'bad_request');
  assert.deepEqual((await api('GET', '/api/v1/operator-keys', 'bob')).json, [], 'nothing was stored for bob');
});

test("admins see every user's keys with the user's name; others see and revoke only their own", async () => {
  const bobsKey = generateOperatorKey().publicKey;
  const created = await api('POST', '/api/v1/operator-keys', 'bob', { publicKey: bobsKey, name: 'bob laptop' });
  assert.equal(created.status, 201, created.text);
  assert.equal(created.json.user, 'bob');

  assert.deepEqual(
    (await api('GET', '/api/v1/operator-keys', 'bob')).json.map((k: { id: string }) => k.id),
    [created.json.id],
  );
  const notAdmin = await api('GET', '/api/v1/operator-keys?all=1', 'bob');
  assert.equal(notAdmin.status, 403);
  assert.equal(notAdmin.json.error.code, 'forbidden');
  const othersKey = await api('DELETE', `/api/v1/operator-keys/${aliceId}`, 'bob');
  assert.equal(othersKey.status, 404, "another user's key reads as absent");
  assert.equal((await api('GET', '/api/v1/operator-keys', 'alice')).json.find((k: { id: string }) => k.id === aliceId).revokedAt, null);

  const all = await api('GET', '/api/v1/operator-keys?all=1', null);
  assert.equal(all.status, 200);
  const owners = new Map((all.json as Array<{ id: string; user: string }>).map((k) => [k.id, k.user]));
  assert.equal(owners.get(aliceId), 'alice');
  assert.equal(owners.get(created.json.id), 'bob');
  assert.deepEqual((await api('GET', '/api/v1/operator-keys', null)).json, [], 'without all=1 an admin sees its own keys');
  const adminList = await cli(home('admin'), null, 'list', '--all');
  assert.match(adminList.stdout, /^ID\s+NAME\s+USER\s+CREATED/);
  assert.match(adminList.stdout, new RegExp(`${created.json.id}\\s+bob laptop\\s+bob\\s`));

  const byAdmin = await api('DELETE', `/api/v1/operator-keys/${created.json.id}`, null);
  assert.equal(byAdmin.status, 200, byAdmin.text);
  assert.equal(byAdmin.json.revoked, true);
  assert.equal((await api('DELETE', '/api/v1/operator-keys/not-a-key', null)).status, 404);
});

test('a scoped user holds keys of its own too', async () => {
  const key = generateOperatorKey().publicKey;
  const created = await api('POST', '/api/v1/operator-keys', 'carol', { publicKey: key, name: 'customer key' });
  assert.equal(created.status, 201, created.text);
  assert.deepEqual(
    (await api('GET', '/api/v1/operator-keys', 'carol')).json.map((k: { publicKey: string }) => k.publicKey),
    [key],
  );
  assert.equal((await api('GET', '/api/v1/operator-keys?all=1', 'carol')).status, 403);
  assert.equal((await api('DELETE', `/api/v1/operator-keys/${created.json.id}`, 'carol')).status, 200);
});

test("registering and revoking keys is in the hub's audit log, by user and outcome", async () => {
  const rows = (await api('GET', '/api/v1/audit?limit=500', null)).json as Array<{ user: string; method: string; path: string; status: number }>;
  const mine = rows.filter((r) => r.path.startsWith('/api/v1/operator-keys'));
  assert.ok(mine.some((r) => r.user === 'alice' && r.method === 'POST' && r.status === 201));
  assert.ok(mine.some((r) => r.user === 'alice' && r.method === 'DELETE' && r.status === 200));
  assert.ok(
    mine.some((r) => r.user === 'bob' && r.method === 'POST' && r.status === 409),
    'a refused registration too',
  );
  assert.ok(mine.some((r) => r.user === 'bob' && r.method === 'DELETE' && r.status === 404));
});

test('create leaves no key file behind when the hub refuses the key', async () => {
  tokens.nobody = 'df_not-a-real-token-at-all-0000000000';
  const res = await cli(home('refused'), 'nobody', 'create');
  assert.equal(res.code, 1);
  assert.match(res.stderr, /\[unauthenticated\]/);
  assert.deepEqual(await pemFiles('refused'), []);
  await assert.rejects(stat(join(keyDir('refused'), 'default')));
});

test('local key files: a key file others may read is refused, several keys and no default need an id', async () => {
  const saved = process.env.DOCKFLEET_HOME;
  process.env.DOCKFLEET_HOME = home('alice');
  try {
    const file = join(keyDir('alice'), `${aliceId}.pem`);
    await chmod(file, 0o644);
    assert.throws(() => loadOperatorSigner(), /may be read by others.*chmod 600/);
    await chmod(file, 0o600);
    await rm(join(keyDir('alice'), 'default'));
    assert.throws(() => loadOperatorSigner(), /several operator keys and no default/);
    assert.equal(loadOperatorSigner({ key: aliceId })?.publicKey, aliceKey);
    assert.equal(loadOperatorSigner({ key: aliceKey })?.publicKey, aliceKey, 'the public key itself names it too');
    await writeFile(join(keyDir('alice'), 'default'), `${aliceId}\n`);
    process.env.DOCKFLEET_HOME = home('empty');
    assert.equal(loadOperatorSigner(), null, 'no key here: null, so connect runs unsigned');
  } finally {
    if (saved === undefined) delete process.env.DOCKFLEET_HOME;
    else process.env.DOCKFLEET_HOME = saved;
  }
});

test('a host requiring signed intent reports it, naming its keys by the fingerprints the hub lists', async () => {
  const unlisted = generateOperatorKey().publicKey;
  const policyFile = join(dir, 'signed-policy.json');
  await writeFile(policyFile, JSON.stringify({ signedIntent: { operators: [aliceKey, unlisted], require: 'all' } }));
  const summary = summarisePolicy(await loadPolicy(policyFile));
  assert.deepEqual(summary.signedIntent, { require: 'all', operators: [aliceId, operatorKeyFingerprint(unlisted)] });
  assert.equal(policySummary.safeParse(summary).success, true);
  assert.equal(summarisePolicy(await loadPolicy(join(dir, 'missing.json'))).signedIntent, null, 'an unsigned host says null');

  const code = (await api('POST', '/api/v1/enrollments', null, { name: 'signed-01' })).json.code as string;
  const agent = spawnDockfleet(['agent', '--hub', hubUrl, '--code', code, '--state', join(dir, 'agent'), '--docker', NO_ENGINE, '--policy', policyFile]);
  processes.push(agent);
  await agent.waitForLine(/agent signed-01 connected/);
  const deadline = Date.now() + 10_000;
  let node: { policy: { signedIntent?: unknown } | null } | undefined;
  while (Date.now() < deadline && !node?.policy) {
    node = (await api('GET', '/api/v1/nodes', null)).json.find((n: { name: string }) => n.name === 'signed-01');
    if (!node?.policy) await new Promise((r) => setTimeout(r, 100));
  }
  assert.deepEqual(node?.policy?.signedIntent, { require: 'all', operators: [aliceId, operatorKeyFingerprint(unlisted)] });
  const hubIds = (await api('GET', '/api/v1/operator-keys?all=1', null)).json.map((k: { id: string }) => k.id);
  assert.ok(hubIds.includes(aliceId), 'the same fingerprint names the key at the hub');
  const nodes = spawnDockfleet(['nodes', '--json'], { DOCKFLEET_HUB: hubUrl, DOCKFLEET_TOKEN: adminToken, DOCKFLEET_CA: caFile });
  assert.equal((await nodes.exited).code, 0, nodes.stderr());
  const listed = (JSON.parse(nodes.stdout()) as Array<{ name: string; policy: { signedIntent: unknown } }>).find((n) => n.name === 'signed-01');
  assert.deepEqual(listed?.policy.signedIntent, { require: 'all', operators: [aliceId, operatorKeyFingerprint(unlisted)] });
  await agent.stop();
});

test("no private key ever appears in an API answer, a CLI line or the hub's log", async () => {
  const secrets: string[] = [];
  for (const name of ['alice', 'alice-desktop']) {
    for (const file of await pemFiles(name)) {
      const pem = await readFile(join(keyDir(name), file), 'utf8');
      secrets.push(pem.split('\n')[1]!);
    }
  }
  assert.ok(secrets.length >= 2, 'there are private keys to look for');
  const seen = [...answers, hub.stdout(), hub.stderr()].join('\n');
  assert.match(hub.stderr(), /"name":"hub"/, "the hub's log is captured");
  for (const secret of secrets) assert.ok(!seen.includes(secret), 'a private key leaked');
});
