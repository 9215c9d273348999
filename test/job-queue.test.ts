/**
 * The hub's durable job queue: idempotent filing (also when submits race), the history over
 * REST and the CLI, and secrets that never reach the database, the API or the job's log.
 * Real hub (TLS, SQLite); the agent is a test handler on a real channel (job-agent.ts).
 */
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { readFile, readdir, stat } from 'node:fs/promises';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { after, before, test } from 'node:test';
import type { FileJobInput } from '../src/hub/jobs/job-queue.ts';
import { mintCode, startTestHub, type TestHub } from './support/hub-fixture.ts';
import { emptyRevision, startJobAgent, succeed, type JobAgent } from './support/job-agent.ts';
import { defaultMasterKeyFile } from '../src/hub/backup/master-key.ts';

const BIN = fileURLToPath(new URL('../bin/dockfleet.js', import.meta.url));
const SECRET = 'pl4nted-S3CRET-value-7f3a9c';
const SECRET_FILE = 'file-secret-ffe81c2d-contents';

let hub: TestHub;
let agent: JobAgent;

function job(key: string, extra: Partial<FileJobInput> = {}): FileJobInput {
  return {
    kind: 'deploy',
    node: 'qnode',
    stack: 'shop',
    target: emptyRevision('shop', 1),
    secrets: { env: {}, files: {} },
    idempotencyKey: key,
    createdBy: 'test',
    ...extra,
  };
}

function cli(...args: string[]): Promise<{ code: number | null; stdout: string; stderr: string }> {
  return new Promise((resolve) => {
    const child = spawn(process.execPath, [BIN, ...args, '--data', hub.dataDir], { stdio: ['ignore', 'pipe', 'pipe'] });
    let stdout = '';
    let stderr = '';
    child.stdout.on('data', (c: Buffer) => (stdout += c.toString()));
    child.stderr.on('data', (c: Buffer) => (stderr += c.toString()));
    child.once('exit', (code) => resolve({ code, stdout, stderr }));
  });
}

before(async () => {
  hub = await startTestHub();
  agent = await startJobAgent({
    hubUrl: hub.url,
    code: await mintCode(hub, 'qnode'),
    // An agent that lets a secret slip into its log and error: the hub redacts it.
    answer: (j, res) => succeed(j, res, `connecting with password ${j.secrets.env.DB_PASSWORD ?? 'none'}`),
  });
  await agent.waitConnected();
});
after(async () => {
  await agent.stop();
  await hub.stop();
});

test('the same idempotency key twice files one job', async () => {
  const a = await hub.hub.jobs.file(job('twice'));
  const b = await hub.hub.jobs.file(job('twice'));
  assert.equal(b.id, a.id);
  assert.equal((await hub.hub.jobs.list({ stack: 'shop' })).filter((j) => j.id === a.id).length, 1);
});

test('20 concurrent submits with one key file one job', async () => {
  const before = (await hub.hub.jobs.list({ node: 'qnode', limit: 1000 })).length;
  const views = await Promise.all(Array.from({ length: 20 }, () => hub.hub.jobs.file(job('racing'))));
  assert.equal(new Set(views.map((v) => v.id)).size, 1);
  assert.equal((await hub.hub.jobs.list({ node: 'qnode', limit: 1000 })).length, before + 1);
  await hub.hub.jobs.wait(views[0]!.id, AbortSignal.timeout(5_000));
  assert.equal(agent.deliveries.filter((d) => d.job.id === views[0]!.id).length, 1, 'delivered once');
});

test('a key reused for another node or stack is refused with idempotency_conflict', async () => {
  await hub.hub.jobs.file(job('owned'));
  await assert.rejects(hub.hub.jobs.file(job('owned', { node: 'elsewhere' })), { code: 'idempotency_conflict' });
});

test('secrets: sealed in the database (its file and WAL never hold them), delivered to the agent, never in API answers or logs', async () => {
  const key = await stat(defaultMasterKeyFile(hub.dataDir)); // the master key, beside DIR
  assert.equal(key.mode & 0o777, 0o600);
  assert.equal(key.size, 32);
  const filed = await hub.hub.jobs.file(
    job('secret', {
      secrets: { env: { DB_PASSWORD: SECRET }, files: { 'api.key': Buffer.from(SECRET_FILE).toString('base64') } },
    }),
  );
  const done = await hub.hub.jobs.wait(filed.id, AbortSignal.timeout(5_000));
  assert.equal(done.state, 'succeeded');
  const delivered = agent.deliveries.find((d) => d.job.id === filed.id)!.job;
  assert.equal(delivered.secrets.env.DB_PASSWORD, SECRET, 'the agent gets the value');
  for (const file of await readdir(hub.dataDir)) {
    if (!file.startsWith('dockfleet.db')) continue;
    const bytes = await readFile(join(hub.dataDir, file));
    for (const needle of [SECRET, SECRET_FILE, Buffer.from(SECRET_FILE).toString('base64')]) {
      assert.equal(bytes.includes(needle), false, `${file} holds a planted secret`);
    }
  }
  const list = await hub.api('GET', '/api/v1/jobs?stack=shop');
  const detail = await hub.api('GET', `/api/v1/jobs/${filed.id}`);
  for (const answer of [list, detail]) {
    assert.equal(answer.status, 200);
    assert.equal(JSON.stringify(answer.json).includes(SECRET), false);
  }
  assert.deepEqual(
    detail.json.logs.map((l: { line: string }) => l.line),
    ['connecting with password [secret]'],
  );
});

test('REST: the history per node and per stack, newest first, and one job with steps and logs; viewers may read', async () => {
  const other = await hub.hub.jobs.file(job('other-stack', { stack: 'blog', target: emptyRevision('blog', 3) }));
  await hub.hub.jobs.wait(other.id, AbortSignal.timeout(5_000));
  const all = await hub.api('GET', '/api/v1/jobs?node=qnode');
  assert.equal(all.status, 200);
  assert.equal(all.json[0].id, other.id, 'newest first');
  for (const key of ['id', 'kind', 'node', 'stack', 'state', 'createdAt', 'finishedAt']) assert.ok(key in all.json[0], key);
  assert.match(all.json[0].createdAt, /^\d{4}-\d\d-\d\dT/);
  const blog = await hub.api('GET', '/api/v1/jobs?stack=blog');
  assert.deepEqual(
    blog.json.map((j: { id: string }) => j.id),
    [other.id],
  );
  assert.equal((await hub.api('GET', '/api/v1/jobs?limit=1')).json.length, 1);
  assert.equal((await hub.api('GET', '/api/v1/jobs?limit=0')).json.error.code, 'validation_failed');
  const missing = await hub.api('GET', '/api/v1/jobs/job_00000000000000000000');
  assert.equal(missing.status, 404);
  const viewer = await hub.api('POST', '/api/v1/users', { name: 'watcher', role: 'viewer' });
  const seen = await hub.api('GET', `/api/v1/jobs/${other.id}`, undefined, viewer.json.token);
  assert.equal(seen.status, 200);
  assert.equal(seen.json.state, 'succeeded');
  assert.equal(seen.json.revision, 3);
  assert.deepEqual(
    seen.json.steps.map((s: { name: string; state: string }) => [s.name, s.state]),
    [['apply', 'succeeded']],
  );
  assert.equal((await hub.api('GET', '/api/v1/jobs', undefined, '')).status, 401);
});

test("CLI: dockfleet jobs --json prints CONTRACT.md's fields; job show prints steps and log lines", async () => {
  const listed = await cli('jobs', '--stack', 'blog', '--json');
  assert.equal(listed.code, 0, listed.stderr);
  const jobs = JSON.parse(listed.stdout) as Array<Record<string, unknown>>;
  assert.equal(jobs.length, 1);
  assert.deepEqual(Object.keys(jobs[0]!).sort(), ['createdAt', 'finishedAt', 'id', 'kind', 'node', 'stack', 'state']);
  assert.equal(jobs[0]!.state, 'succeeded');
  const table = await cli('jobs', '--node', 'qnode');
  assert.equal(table.code, 0, table.stderr);
  assert.match(table.stdout, /^ID\s+KIND\s+NODE\s+STACK/);
  assert.match(table.stdout, new RegExp(`${jobs[0]!.id as string}\\s+deploy\\s+qnode\\s+blog`));
  const shown = await cli('job', 'show', jobs[0]!.id as string);
  assert.equal(shown.code, 0, shown.stderr);
  assert.match(shown.stdout, /state\s+succeeded/);
  assert.match(shown.stdout, /apply\s+succeeded/);
  assert.match(shown.stdout, /applying blog|connecting with password none/);
  const none = await cli('job', 'show', 'job_00000000000000000000');
  assert.equal(none.code, 1);
  assert.match(none.stderr, /\[not_found\]/);
});
