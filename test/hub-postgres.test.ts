/**
 * A hub on PostgreSQL (issue 17, item 1): `--store postgres://…` (here through DOCKFLEET_STORE's
 * twin, the store option) keeps every record in a private PostgreSQL server, and the hub works as
 * it does on SQLite: an agent enrolls and connects, the stock docker CLI lists and runs
 * containers through the hub, and a hub started again on the same database knows the node, its
 * audit entries and its users. The URL's password appears in no error, log line or API answer.
 */
import assert from 'node:assert/strict';
import { mkdtemp, readdir, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Writable } from 'node:stream';
import { after, before, test } from 'node:test';
import { hubConfigFrom } from '../src/hub/config.ts';
import { createLogger } from '../src/lib/logger.ts';
import { PgDb } from '../src/store/postgres/db.ts';
import { startTestAgent, type TestAgent } from './support/agent-fixture.ts';
import { DOCKER_BIN, parseExports, run } from './support/docker-cli.ts';
import { startEngines, stopEngines, type TestEngine } from './support/engines.ts';
import { mintCode, startTestHub, waitFor, type TestHub } from './support/hub-fixture.ts';
import { startPostgres, type PostgresServer } from './support/postgres.ts';
import { spawnDockfleet } from './support/processes.ts';

let work: string;
let pg: PostgresServer;
let url: string;
let engines: TestEngine[] = [];
let hub: TestHub | undefined;
let agent: TestAgent | undefined;
const logged: string[] = [];
const log = createLogger('hub', { level: 'debug', format: 'json' }, { stream: new Writable({ write: (c, _e, cb) => (logged.push(String(c)), cb()) }) as never });

before(async () => {
  work = await mkdtemp(join(tmpdir(), 'dockfleet-hub-pg-'));
  pg = await startPostgres();
  url = await pg.freshDatabase();
  engines = await startEngines(1, { prefix: 'hubpg' });
});

after(async () => {
  await agent?.stop();
  await hub?.stop();
  await stopEngines(engines);
  await pg?.stop();
  if (work) await rm(work, { recursive: true, force: true });
});

test('--store takes sqlite or a postgres URL; anything else, or PostgreSQL with scheduled backups, is refused without the password', () => {
  assert.deepEqual(hubConfigFrom({}).store, { kind: 'sqlite' });
  assert.deepEqual(hubConfigFrom({ store: 'sqlite' }).store, { kind: 'sqlite' });
  assert.equal(hubConfigFrom({}, { DOCKFLEET_STORE: url }).store?.kind, 'postgres');
  assert.throws(
    () => hubConfigFrom({ store: 'mysql://u:s3cret@h/db' }),
    (err: Error) => /not a mysql URL/.test(err.message) && !err.message.includes('s3cret'),
  );
  assert.throws(() => hubConfigFrom({ store: 'not a url' }), /--store wants sqlite or a postgres/);
  assert.throws(
    () => hubConfigFrom({ store: url, 'backup-every': '1h', 'backup-dir': work }, {}),
    (err: Error) => /pg_dump/.test(err.message) && !err.message.includes(pg.password),
  );
});

test('on PostgreSQL: an agent enrolls and connects, and the docker CLI runs a container through the hub', { timeout: 180_000 }, async () => {
  hub = await startTestHub({ store: url, log });
  const db = new PgDb(url);
  try {
    const { rows } = await db.query<{ n: number }>('SELECT count(*)::int AS n FROM schema_migrations');
    assert.ok(rows[0]!.n > 10, 'the migrations were applied to PostgreSQL');
  } finally {
    await db.close();
  }
  assert.deepEqual(
    (await readdir(hub.dataDir)).filter((f) => f.startsWith('dockfleet.db')),
    [],
    'no SQLite file was made',
  );
  agent = await startTestAgent({ hubUrl: hub.url, code: await mintCode(hub, 'pg-01'), docker: engines[0]!.dockerHost });
  await agent.waitConnected(1, 30_000);
  await writeFile(join(work, 'ca.pem'), hub.caPem);
  const token = (await hub.api('POST', '/api/v1/tokens', { name: 'cli' })).json.token as string;
  const p = spawnDockfleet(['docker-env', 'pg-01', '--hub', hub.url, '--token', token, '--ca', join(work, 'ca.pem'), '--dir', join(work, 'certs')]);
  assert.equal((await p.exited).code, 0, p.stderr());
  const env = { ...parseExports(p.stdout()), DOCKER_CLI_HINTS: 'false' };
  const ran = await run(DOCKER_BIN, ['run', '--rm', 'dockfleet-test/busybox:latest', 'echo', 'from-postgres'], env, { timeoutMs: 60_000 });
  assert.equal(ran.code, 0, ran.stderr);
  assert.equal(ran.stdout.trim(), 'from-postgres');
  const ps = await run(DOCKER_BIN, ['ps', '-a', '--format', '{{.Image}}'], env);
  assert.equal(ps.code, 0, ps.stderr);
});

test('a hub started again on the same database knows the node and its audit entries (whose chain verifies from the CLI), and the agent comes back', { timeout: 120_000 }, async () => {
  assert.ok(hub && agent);
  const dataDir = hub.dataDir;
  const before = (await hub.api('GET', '/api/v1/audit?limit=500')).json as unknown[];
  assert.ok(before.length > 0);
  const port = Number(new URL(hub.url).port);
  await hub.stop({ keepData: true });
  hub = await startTestHub({ store: url, dataDir, log, port });
  const nodes = (await hub.api('GET', '/api/v1/nodes')).json as Array<{ name: string }>;
  assert.deepEqual(
    nodes.map((n) => n.name),
    ['pg-01'],
  );
  const afterRestart = (await hub.api('GET', '/api/v1/audit?limit=500')).json as unknown[];
  assert.ok(afterRestart.length >= before.length, 'every audit entry is still there');
  const verify = spawnDockfleet(['audit', 'verify'], { DOCKFLEET_STORE: url });
  const verified = await verify.exited;
  assert.equal(verified.code, 0, `${verify.stdout()}\n${verify.stderr()}`);
  assert.match(verify.stdout(), /^ok: \d+ audit rows match/);
  assert.ok(!`${verify.stdout()}${verify.stderr()}`.includes(pg.password));
  await waitFor(async () => ((await hub!.api('GET', '/api/v1/nodes')).json as Array<{ status: string }>)[0]?.status === 'online', 30_000, 'the agent back online');
});

test('the database password appears in no log line and no API answer', async () => {
  assert.ok(hub);
  const text = logged.join('');
  assert.ok(text.includes('records kept in PostgreSQL'), 'the hub says where its records are');
  assert.ok(!text.includes(pg.password), 'the password is not logged');
  for (const path of ['/api/v1/nodes', '/api/v1/audit?limit=500', '/api/v1/openapi.json']) {
    const res = await hub.api('GET', path);
    assert.ok(!JSON.stringify(res.json).includes(pg.password), path);
  }
});
