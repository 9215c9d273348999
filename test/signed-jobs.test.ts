/**
 * The CLI signs the jobs it files (issue 13): on a host whose policy requires signed intent from
 * a key made with `dockfleet operator-key create`, `stack deploy --wait` works end to end and the
 * host's audit log names the key; without a key the host refuses the job and the CLI says why; a
 * hub that changes the job between filing and signing gets no signature (the CLI names the field);
 * a signed intent moved onto another job is refused by the host (its nonce is spent); a rollback
 * is signed to a revision this CLI signed, and refused for one it never signed unless --trust-hub.
 * Real hub (in this process, real TLS and SQLite), real `dockfleet agent` and CLI processes, a
 * private dockerd.
 */
import assert from 'node:assert/strict';
import { mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, test } from 'node:test';
import { createHash } from 'node:crypto';
import Database from 'better-sqlite3';
import { chooseLocalKey, readLocalKey } from '../src/cli/intent/operator-key-file.ts';
import { sweepSigningDeadlines } from '../src/hub/jobs/signing-deadlines.ts';
import { jobOp } from '../src/protocol/intent.ts';
import { BUSYBOX_IMAGE, engineRequest, startEngines, stopEngines, type TestEngine } from './support/engines.ts';
import { mintCode, nodeStatus, startTestHub, waitFor, type TestHub } from './support/hub-fixture.ts';
import { spawnDockfleet, type DockfleetProcess } from './support/processes.ts';

const NODE = 'signed-jobs-1';
let engine: TestEngine;
let hub: TestHub;
let work: string;
let home: string;
let publicKey: string;
let agent: DockfleetProcess | undefined;

async function cli(args: string[], env: NodeJS.ProcessEnv = {}): Promise<{ code: number | null; stdout: string; stderr: string }> {
  const p = spawnDockfleet(args, { DOCKFLEET_HUB: hub.url, DOCKFLEET_TOKEN: hub.token, DOCKFLEET_CA: join(hub.dataDir, 'pki', 'ca.pem'), DOCKFLEET_HOME: home, ...env });
  const { code } = await p.exited;
  return { code, stdout: p.stdout(), stderr: p.stderr() };
}

function compose(release: string): string {
  return [
    'services:',
    '  web:',
    `    image: ${BUSYBOX_IMAGE}`,
    "    command: ['sh', '-c', 'touch /tmp/ready; exec sleep 3600']",
    '    environment:',
    '      TOKEN: ${WEB_TOKEN}',
    '    healthcheck:',
    "      test: ['CMD-SHELL', 'test -f /tmp/ready']",
    '      interval: 300ms',
    '      retries: 3',
    '    labels:',
    `      release: ${release}`,
    '',
  ].join('\n');
}

async function deployArgs(stack: string, release: string): Promise<string[]> {
  const file = join(work, `${stack}-${release}.yml`);
  await writeFile(file, compose(release));
  return ['stack', 'deploy', stack, '-f', file, '--node', NODE, '--secret-env-file', join(work, 'secret.env'), '--wait'];
}

async function hostAudit(): Promise<Array<Record<string, any>>> {
  const text = await readFile(join(work, 'agent', 'audit.log'), 'utf8').catch(() => '');
  return text
    .split('\n')
    .filter(Boolean)
    .map((l) => JSON.parse(l) as Record<string, any>);
}

async function releaseOf(stack: string): Promise<string | undefined> {
  const filters = encodeURIComponent(JSON.stringify({ label: [`com.docker.compose.project=${stack}`] }));
  const list = (await engineRequest(engine.socketPath, 'GET', `/containers/json?filters=${filters}`)).json as Array<{ Labels: Record<string, string> }>;
  return list[0]?.Labels.release;
}

function lastLine(text: string): string {
  return text.trimEnd().split('\n').at(-1) ?? '';
}

before(async () => {
  [engine] = (await startEngines(1, { prefix: 'signed-jobs' })) as [TestEngine];
  work = await mkdtemp(join(tmpdir(), 'dockfleet-signed-jobs-'));
  home = join(work, 'home');
  await writeFile(join(work, 'secret.env'), 'WEB_TOKEN=tok-5ecret\n');
  hub = await startTestHub({ dataDir: join(work, 'hub') });
  const created = await cli(['operator-key', 'create', '--name', 'laptop']);
  assert.equal(created.code, 0, created.stderr);
  const shown = await cli(['operator-key', 'show']);
  assert.equal(shown.code, 0, shown.stderr);
  publicKey = /ed25519:[A-Za-z0-9_-]{43}/.exec(shown.stdout)![0];
  const sections = ['ping', 'version', 'info', 'events', 'system', 'containers', 'exec', 'images', 'volumes', 'networks'];
  await writeFile(
    join(work, 'policy.json'),
    JSON.stringify({
      sections: Object.fromEntries(sections.map((s) => [s, true])),
      ...(process.env.DOCKFLEET_TEST_INTENT_OFF === '1' ? {} : { signedIntent: { operators: [publicKey], require: 'mutations' } }),
    }),
  );
  agent = spawnDockfleet(['agent', '--hub', hub.url, '--code', await mintCode(hub, NODE), '--state', join(work, 'agent'), '--docker', engine.dockerHost, '--policy', join(work, 'policy.json')]);
  await agent.waitForLine(new RegExp(`agent ${NODE} connected`));
  await waitFor(async () => (await nodeStatus(hub, NODE)) === 'online', 10_000, 'node online');
  // The CLI decides to sign from the node's policy summary: wait until the hub has it.
  await waitFor(async () => (await hub.api('GET', '/api/v1/nodes')).json.find((n: any) => n.name === NODE)?.policy, 10_000, 'policy summary');
});

after(async () => {
  await agent?.stop();
  await hub?.stop({ keepData: true });
  if (engine) await stopEngines([engine]);
  if (work) await rm(work, { recursive: true, force: true });
});

test('stack deploy --wait with an operator key signs the job, the signed host runs it, and its audit log names the key', { timeout: 120_000 }, async () => {
  const deploy = await cli(await deployArgs('web', 'one'));
  assert.equal(deploy.code, 0, `${deploy.stdout}\n${deploy.stderr}`);
  assert.match(deploy.stderr, /signed 1 deploy job\(s\) with operator key ed25519:/);
  const jobId = lastLine(deploy.stdout);
  assert.match(jobId, /^job_[0-9a-z]+$/);
  assert.equal(await releaseOf('web'), 'one');
  const entry = await waitFor(async () => (await hostAudit()).find((e) => e.op === 'job deploy' && e.result === 'ok'), 5_000, 'the executed job in the host log');
  assert.equal(entry.key, publicKey, 'the host log names the signing key');
  const record = JSON.parse(await readFile(join(home, 'signed', 'web', '1.json'), 'utf8'));
  assert.equal(record.revision, 1);
  assert.ok(!JSON.stringify(record).includes('tok-5ecret'), 'no secret value in the local record');
});

test('without an operator key the job is filed unsigned and the host refuses it; --wait says why', { timeout: 60_000 }, async () => {
  const deploy = await cli(await deployArgs('nokey', 'one'), { DOCKFLEET_HOME: join(work, 'empty-home') });
  assert.equal(deploy.code, 1, `${deploy.stdout}\n${deploy.stderr}`);
  assert.match(deploy.stderr, /this host requires signed intent: the call carries no signed intent/);
  assert.equal(await releaseOf('nokey'), undefined);
});

test('a hub that changes the job between filing and signing gets no signature: the CLI names the field', { timeout: 60_000 }, async () => {
  const db = new Database(join(hub.dataDir, 'dockfleet.db'));
  const jobs = hub.hub.jobs;
  const original = jobs.signedBody.bind(jobs);
  // The compromised hub: the job in its database now runs another image than the file says.
  jobs.signedBody = async (id: string) => {
    const row = db.prepare('SELECT request FROM jobs WHERE id = ?').get(id) as { request: string };
    const request = JSON.parse(row.request);
    request.target.project.services.web.image = 'evil/miner:latest';
    db.prepare('UPDATE jobs SET request = ? WHERE id = ?').run(JSON.stringify(request), id);
    return original(id);
  };
  try {
    const deploy = await cli(await deployArgs('tampered', 'one'));
    assert.notEqual(deploy.code, 0);
    assert.match(deploy.stderr, /refusing to sign the deploy job for node signed-jobs-1: the hub's target\.project\.services\.web\.image differs/);
    const listed = (await hub.api('GET', '/api/v1/jobs?stack=tampered')).json as Array<{ id: string; state: string; errorCode: string; error: string }>;
    assert.equal(listed.length, 1);
    // Declined by the CLI: the job fails at once, unsigned and never delivered, and the rollout ends.
    assert.equal(listed[0]!.state, 'failed');
    assert.equal(listed[0]!.errorCode, 'signature_declined');
    assert.match(listed[0]!.error, /the operator declined to sign it: refusing to sign the deploy job .*target\.project\.services\.web\.image/);
    const detail = (await hub.hub.jobs.get(listed[0]!.id))!;
    assert.equal(detail.attempts, 0);
    assert.equal(detail.steps.length, 0);
    assert.equal(await releaseOf('tampered'), undefined);
    await waitFor(async () => (await hub.api('GET', '/api/v1/stacks/tampered')).json.rollouts?.[0]?.state === 'failed', 5_000, 'the rollout ended (the stack is free again)');
  } finally {
    jobs.signedBody = original;
    db.close();
  }
});

test("a signed job's intent moved onto a second job is refused by the host (its nonce is spent)", { timeout: 60_000 }, async () => {
  const db = new Database(join(hub.dataDir, 'dockfleet.db'), { readonly: true });
  const signed = db.prepare("SELECT id, intent, request FROM jobs WHERE stack = 'web' AND state = 'succeeded' ORDER BY seq LIMIT 1").get() as { id: string; intent: string; request: string };
  db.close();
  assert.ok(signed?.intent, 'the first deploy was signed');
  // The same job body again (same revision, project, secrets), filed by the hub itself, and the
  // first job's intent copied onto it through the hub's own API with the admin token.
  const original = JSON.parse(signed.request);
  const secrets = { env: { TOKEN: 'tok-5ecret' }, files: {} };
  const copy = await hub.hub.jobs.file({
    kind: 'deploy',
    node: NODE,
    stack: 'web',
    target: original.target,
    secrets,
    idempotencyKey: `test:replay:${Date.now()}`,
    createdBy: 'hub-db',
    signing: { held: false },
  });
  assert.equal(await hub.hub.jobs.signedBody(copy.id), await hub.hub.jobs.signedBody(signed.id), 'the copy is the signed job body');
  const attached = await hub.api('POST', `/api/v1/jobs/${copy.id}/intent`, { intent: signed.intent });
  assert.equal(attached.status, 200, JSON.stringify(attached.json));
  const done = await hub.hub.jobs.wait(copy.id, AbortSignal.timeout(15_000));
  assert.equal(done.state, 'failed');
  assert.match(String(done.error), /this host requires signed intent: .*already used \(a replay\)/);
  assert.ok((await hostAudit()).some((e) => e.result === 'refused' && e.op === `job deploy ${copy.id}`));
});

test('rollback to a revision this CLI signed is signed and runs; to one it never signed it refuses without --trust-hub', { timeout: 180_000 }, async () => {
  const second = await cli(await deployArgs('web', 'two'));
  assert.equal(second.code, 0, `${second.stdout}\n${second.stderr}`);
  assert.equal(await releaseOf('web'), 'two');

  const back = await cli(['stack', 'rollback', 'web', '--to', '1', '--wait']);
  assert.equal(back.code, 0, `${back.stdout}\n${back.stderr}`);
  assert.match(back.stderr, /signed 1 rollback job\(s\)/);
  assert.equal(await releaseOf('web'), 'one');

  // Revision 3 is filed unsigned (--no-sign): the host refuses it, and this CLI never signed it.
  const unsigned = await cli([...(await deployArgs('web', 'three')), '--no-sign']);
  assert.equal(unsigned.code, 1, `${unsigned.stdout}\n${unsigned.stderr}`);
  await rm(join(home, 'signed', 'web', '3.json'), { force: true });
  const refused = await cli(['stack', 'rollback', 'web', '--to', '3']);
  assert.notEqual(refused.code, 0);
  assert.match(refused.stderr, /refusing to sign the rollback of web to revision 3: this CLI never signed that revision/);
  assert.match(refused.stderr, /--trust-hub/);
  assert.equal(await releaseOf('web'), 'one', 'nothing changed on the host');

  // --trust-hub: the hub's revision 3 is shown (services and images), then signed as it is.
  const trusted = await cli(['stack', 'rollback', 'web', '--to', '3', '--trust-hub', '--wait']);
  assert.equal(trusted.code, 0, `${trusted.stdout}\n${trusted.stderr}`);
  assert.match(trusted.stderr, /--trust-hub: signing revision 3 of web as the hub has it:\n {2}web: dockfleet-test\/busybox:latest/);
  assert.equal(await releaseOf('web'), 'three');
});

test('a signed job whose intent expires before its host is reached fails saying so; one never signed fails after 5 minutes', { timeout: 60_000 }, async () => {
  const signer = readLocalKey(chooseLocalKey(undefined, join(home, 'operator-keys'))!, join(home, 'operator-keys'));
  const input = {
    kind: 'remove' as const,
    node: NODE,
    stack: 'late',
    target: null,
    secrets: { env: {}, files: {} },
    createdBy: 'test',
  };
  // Held by its rollout (a later wave), signed with a 1 s intent, released after it expired.
  const held = await hub.hub.jobs.file({ ...input, idempotencyKey: `test:late:${Date.now()}`, signing: { held: true } });
  const body = await hub.hub.jobs.signedBody(held.id);
  const intent = signer.intent(NODE, jobOp('remove'), `sha256:${createHash('sha256').update(body).digest('hex')}`, 1_000).wire;
  await hub.hub.jobs.attachIntent(held.id, intent);
  await new Promise((r) => setTimeout(r, 1_200));
  await hub.hub.jobs.release(held.id);
  const done = await hub.hub.jobs.wait(held.id, AbortSignal.timeout(10_000));
  assert.equal(done.state, 'failed');
  assert.equal(done.errorCode, 'intent_expired');
  assert.equal(done.error, 'its signature expired before the host was reached: deploy again');
  assert.equal((await hub.hub.jobs.get(held.id))!.attempts, 0, 'never sent to the host');

  const unsigned = await hub.hub.jobs.file({ ...input, idempotencyKey: `test:unsigned:${Date.now()}`, signing: { held: false } });
  assert.equal(await sweepSigningDeadlines(hub.hub.jobs, Date.now() + 4 * 60_000), 0, 'not yet');
  // This one, and the jobs the refused signings above left awaiting theirs.
  assert.ok((await sweepSigningDeadlines(hub.hub.jobs, Date.now() + 5 * 60_000 + 1_000)) >= 1);
  const missing = (await hub.hub.jobs.get(unsigned.id))!;
  assert.equal(missing.state, 'failed');
  assert.equal(missing.errorCode, 'signature_missing');
});
