/**
 * A hub whose PostgreSQL goes away mid-run (issue 17, item 5: degraded but honest). A hub on a
 * private PostgreSQL, a real agent and engine, the stock docker CLI; the server is stopped for
 * about ten seconds. Meanwhile reads from memory go on (the node list, docker ps through the
 * gateway, for a bearer token and a client certificate authenticated from memory), writes that
 * need the database fail at once with store_unavailable (503, retryable) and change nothing, a
 * Docker mutation whose audit intent cannot be written is refused and never reaches the engine;
 * nothing hangs, the hub does not crash. When the server is back the hub recovers without a
 * restart, and everything answered 2xx before the outage is in the database.
 */
import assert from 'node:assert/strict';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { createServer, type Socket } from 'node:net';
import { after, before, test } from 'node:test';
import { hashToken } from '../src/hub/admin-token.ts';
import { DockfleetError } from '../src/protocol/errors.ts';
import { PgDb } from '../src/store/postgres/db.ts';
import { startTestAgent, type TestAgent } from './support/agent-fixture.ts';
import { DOCKER_BIN, parseExports, run } from './support/docker-cli.ts';
import { startEngines, stopEngines, type TestEngine } from './support/engines.ts';
import { mintCode, startTestHub, waitFor, type TestHub } from './support/hub-fixture.ts';
import { startPostgres, type PostgresServer } from './support/postgres.ts';
import { spawnDockfleet } from './support/processes.ts';

const IMAGE = 'dockfleet-test/busybox:latest';
let work: string;
let pg: PostgresServer;
let url: string;
let engines: TestEngine[] = [];
let hub: TestHub | undefined;
let agent: TestAgent | undefined;
let env: Record<string, string>;
/** Tokens and audit rows the hub answered 2xx for before the outage. */
const acknowledged = { tokens: [] as string[], auditIds: [] as number[] };
/** A token used once (so its rows were read) and then revoked, before the outage. */
let revokedToken: string;

const docker = (args: string[]) => run(DOCKER_BIN, args, { ...env, DOCKER_CLI_HINTS: 'false' }, { timeoutMs: 30_000 });

/** Runs `fn` and returns its value and how long it took. */
async function timed<T>(fn: () => Promise<T>): Promise<{ value: T; ms: number }> {
  const t0 = Date.now();
  const value = await fn();
  return { value, ms: Date.now() - t0 };
}

before(async () => {
  work = await mkdtemp(join(tmpdir(), 'dockfleet-store-down-'));
  pg = await startPostgres();
  url = await pg.freshDatabase();
  engines = await startEngines(1, { prefix: 'pgdown' });
  hub = await startTestHub({ store: url });
  agent = await startTestAgent({ hubUrl: hub.url, code: await mintCode(hub, 'down-01'), docker: engines[0]!.dockerHost });
  await agent.waitConnected(1, 30_000);
  await writeFile(join(work, 'ca.pem'), hub.caPem);
  const token = (await hub.api('POST', '/api/v1/tokens', { name: 'cli' })).json.token as string;
  const p = spawnDockfleet(['docker-env', 'down-01', '--hub', hub.url, '--token', token, '--ca', join(work, 'ca.pem'), '--dir', join(work, 'certs')]);
  assert.equal((await p.exited).code, 0, p.stderr());
  env = parseExports(p.stdout());
});

after(async () => {
  await agent?.stop();
  await hub?.stop();
  await stopEngines(engines);
  await pg?.stop();
  if (work) await rm(work, { recursive: true, force: true });
});

test('before the outage: writes are acknowledged (tokens, a container run through the CLI, its audit rows)', { timeout: 90_000 }, async () => {
  assert.ok(hub);
  for (const name of ['before-1', 'before-2']) {
    const res = await hub.api('POST', '/api/v1/tokens', { name });
    assert.equal(res.status, 201, JSON.stringify(res.json));
    acknowledged.tokens.push(name);
  }
  revokedToken = (await hub.api('POST', '/api/v1/tokens', { name: 'revoked-before' })).json.token as string;
  assert.equal((await hub.api('GET', '/api/v1/nodes', undefined, revokedToken)).status, 200);
  const revoked = await hub.api('DELETE', `/api/v1/tokens/${hashToken(revokedToken)}`, undefined, revokedToken);
  assert.equal(revoked.status, 200, JSON.stringify(revoked.json));
  acknowledged.tokens.push('revoked-before');
  const ran = await docker(['run', '-d', '--name', 'keeper', IMAGE, 'sleep', '600']);
  assert.equal(ran.code, 0, ran.stderr);
  const audit = (await hub.api('GET', '/api/v1/audit?limit=500')).json as Array<{ id: number; outcome: string }>;
  assert.ok(audit.length > 0);
  acknowledged.auditIds = audit.filter((r) => r.outcome === 'ok').map((r) => r.id);
  assert.ok(acknowledged.auditIds.length > 0, 'some audited changes finished');
});

test('PostgreSQL stopped: reads from memory go on, writes fail at once with store_unavailable and change nothing, nothing hangs or crashes', { timeout: 90_000 }, async () => {
  assert.ok(hub);
  await pg.halt();
  const outageStarted = Date.now();

  // Reads: the node list (memory), with the bearer token authenticated from what the hub last read.
  const nodes = await timed(() => hub!.api('GET', '/api/v1/nodes'));
  assert.equal(nodes.value.status, 200, JSON.stringify(nodes.value.json));
  assert.deepEqual(
    (nodes.value.json as Array<{ name: string; status: string }>).map((n) => [n.name, n.status]),
    [['down-01', 'online']],
  );
  assert.ok(nodes.ms < 2_000, `node list took ${nodes.ms} ms`);
  const one = await hub.api('GET', '/api/v1/nodes/down-01');
  assert.equal(one.status, 200, JSON.stringify(one.json));
  const refused = await hub.api('GET', '/api/v1/nodes', undefined, revokedToken);
  assert.notEqual(refused.status, 200, 'a token revoked before the outage is not let back in from memory');

  // Docker reads through the gateway, with the CLI's client certificate.
  const ps = await timed(() => docker(['ps', '--format', '{{.Names}}']));
  assert.equal(ps.value.code, 0, ps.value.stderr);
  assert.match(ps.value.stdout, /^keeper$/m);
  const inspect = await docker(['inspect', '--format', '{{.State.Running}}', 'keeper']);
  assert.equal(inspect.code, 0, inspect.stderr);
  assert.equal(inspect.stdout.trim(), 'true');

  // Writes that need the store: a clear, retryable error, quickly (never a hang, never a 500).
  for (const [path, body] of [
    ['/api/v1/tokens', { name: 'during' }],
    ['/api/v1/enrollments', { name: 'down-02' }],
  ] as const) {
    const res = await timed(() => hub!.api('POST', path, body));
    assert.equal(res.value.status, 503, `${path}: ${JSON.stringify(res.value.json)}`);
    assert.equal(res.value.json.error.code, 'store_unavailable', path);
    assert.ok(!JSON.stringify(res.value.json).includes(pg.password), 'the password is not in the answer');
    assert.ok(res.ms < 8_000, `${path} took ${res.ms} ms`);
  }

  // A Docker mutation whose audit intent cannot be written is refused before it reaches the engine.
  const removed = await timed(() => docker(['rm', '-f', 'keeper']));
  assert.notEqual(removed.value.code, 0, 'docker rm was refused');
  assert.match(removed.value.stderr, /store_unavailable/);
  assert.ok(removed.ms < 10_000, `docker rm took ${removed.ms} ms`);
  const created = await docker(['run', '-d', '--name', 'during-outage', IMAGE, 'sleep', '600']);
  assert.notEqual(created.code, 0, 'docker run was refused');
  const still = await docker(['ps', '-a', '--format', '{{.Names}}']);
  assert.equal(still.code, 0, still.stderr);
  assert.deepEqual(still.stdout.trim().split('\n').sort(), ['keeper'], 'nothing changed on the host');

  // Keep the server down ~10 s: the hub's own background work (heartbeats, inventory) must not crash it.
  await new Promise((r) => setTimeout(r, Math.max(0, 10_000 - (Date.now() - outageStarted))));
  const later = await hub.api('GET', '/api/v1/nodes');
  assert.equal(later.status, 200);
  assert.equal((later.json as Array<{ status: string }>)[0]?.status, 'online', 'the agent stayed connected');
});

test('a server that accepts connections but never answers: calls fail with store_unavailable within the connect timeout, not hang', { timeout: 30_000 }, async () => {
  const sockets = new Set<Socket>();
  const silent = createServer((socket) => (sockets.add(socket), socket.on('error', () => {})));
  await new Promise<void>((resolve) => silent.listen(0, '127.0.0.1', resolve));
  const port = (silent.address() as { port: number }).port;
  const db = new PgDb(`postgres://u:hush-hush@127.0.0.1:${port}/db`, { connectTimeoutMs: 1_000 });
  try {
    for (const call of [() => db.query('SELECT 1'), () => db.tx((q) => q.query('SELECT 1'))]) {
      const t0 = Date.now();
      await assert.rejects(call(), (err: Error) => err instanceof DockfleetError && err.code === 'store_unavailable' && !err.message.includes('hush-hush'));
      assert.ok(Date.now() - t0 < 3_000, `failed after ${Date.now() - t0} ms`);
    }
  } finally {
    await db.close();
    for (const socket of sockets) socket.destroy();
    await new Promise((resolve) => silent.close(resolve));
  }
});

test('PostgreSQL back: the hub recovers without a restart, writes work again, and nothing acknowledged was lost', { timeout: 90_000 }, async () => {
  assert.ok(hub);
  await pg.resume();
  const res = await waitFor(
    async () => {
      const r = await hub!.api('POST', '/api/v1/tokens', { name: 'after' });
      return r.status === 201 ? r : null;
    },
    10_000,
    'a token created after the outage',
    200,
  );
  assert.equal(res.status, 201);
  const removed = await docker(['rm', '-f', 'keeper']);
  assert.equal(removed.code, 0, removed.stderr);

  const db = new PgDb(url);
  try {
    const tokens = (await db.query<{ name: string }>('SELECT name FROM api_tokens ORDER BY created_at')).rows.map((r) => r.name);
    for (const name of acknowledged.tokens) assert.ok(tokens.includes(name), `token ${name} is in the database`);
    assert.ok(!tokens.includes('during'), 'the refused token was not made');
    const ids = (await db.query<{ id: number }>('SELECT id FROM audit_log WHERE id = ANY($1::bigint[])', [acknowledged.auditIds])).rows.map((r) => r.id);
    assert.deepEqual(ids.sort(), [...acknowledged.auditIds].sort(), 'every acknowledged audit row is there');
    const codes = (await db.query<{ n: number }>("SELECT count(*)::int AS n FROM enrollment_codes WHERE node_name = 'down-02'")).rows[0]!.n;
    assert.equal(codes, 0, 'the refused enrollment left no code');
  } finally {
    await db.close();
  }
});
