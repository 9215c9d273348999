/**
 * Leases on a real PostgreSQL (`src/hub/cluster/lease.ts`), two followers of one name as two
 * replicas would be:
 * - Let go (stopped, or the replica closing), a lease stays locked until its drive has ended: a
 *   drive that takes a second to finish what it was doing (a message half sent) is never
 *   overlapped by the next holder's.
 * - A drive that ignores its signal is let go after `letGoWaitMs`, with a warning.
 * - A holder whose lease session the server ends is told at once, and the other takes over.
 */
import assert from 'node:assert/strict';
import { Writable } from 'node:stream';
import { after, before, describe, test } from 'node:test';
import pg from 'pg';
import { PgLeases } from '../src/hub/cluster/lease.ts';
import { createLogger } from '../src/lib/logger.ts';
import { waitFor } from './support/hub-fixture.ts';
import { postgresMissing, startPostgres, type PostgresServer } from './support/postgres.ts';

const skip = postgresMissing();

/** Who drove when: each drive's start and end, by follower. */
interface Span {
  who: string;
  from: number;
  to: number | null;
}

function quietLog(lines: string[] = []) {
  return createLogger('hub', { level: 'info', format: 'json' }, { stream: new Writable({ write: (c, _e, cb) => (lines.push(...String(c).split('\n').filter(Boolean)), cb()) }) });
}

/** Follows `name` on `leases` as `who`; the drive, once aborted, takes `endMs` more to end (never, if null). */
function follow(leases: PgLeases, name: string, who: string, spans: Span[], endMs: number | null) {
  return leases.follow(name, async (held) => {
    const span: Span = { who, from: Date.now(), to: null };
    spans.push(span);
    await new Promise((resolve) => held.addEventListener('abort', resolve, { once: true }));
    if (endMs === null) return new Promise<void>(() => {});
    await new Promise((resolve) => setTimeout(resolve, endMs));
    span.to = Date.now();
  });
}

function assertNoOverlap(spans: Span[]): void {
  for (let i = 1; i < spans.length; i++) {
    const before = spans[i - 1]!;
    const now = spans[i]!;
    assert.ok(before.to !== null && before.to <= now.from, `${now.who} began at ${now.from} while ${before.who}'s drive ran until ${before.to}: ${JSON.stringify(spans)}`);
  }
}

describe('leases on PostgreSQL', { skip: skip ?? false }, () => {
  let server: PostgresServer;
  let url: string;
  before(async () => {
    server = await startPostgres();
    url = await server.freshDatabase();
  });
  after(async () => server?.stop());

  test('a stopped drive keeps the lease until it has ended; the other follower takes it only then', async () => {
    const [a, b] = [new PgLeases(url, quietLog(), { retryMs: 100 }), new PgLeases(url, quietLog(), { retryMs: 100 })];
    try {
      const spans: Span[] = [];
      const followA = follow(a, 'stop-drain', 'a', spans, 1_000);
      await waitFor(() => a.holds('stop-drain'), 5_000, 'a to hold the lease');
      follow(b, 'stop-drain', 'b', spans, 0);
      await new Promise((r) => setTimeout(r, 300)); // b asked a few times and was refused
      assert.equal(b.holds('stop-drain'), false);
      followA.stop();
      await waitFor(() => b.holds('stop-drain'), 5_000, 'b to take the lease over');
      assert.deepEqual(
        spans.map((s) => s.who),
        ['a', 'b'],
      );
      assertNoOverlap(spans);
    } finally {
      await Promise.all([a.close(), b.close()]);
    }
  });

  test('a replica closing waits for its drives to end before its session lets the locks go', async () => {
    const [a, b] = [new PgLeases(url, quietLog(), { retryMs: 100 }), new PgLeases(url, quietLog(), { retryMs: 100 })];
    try {
      const spans: Span[] = [];
      follow(a, 'close-drain', 'a', spans, 1_000);
      await waitFor(() => a.holds('close-drain'), 5_000, 'a to hold the lease');
      follow(b, 'close-drain', 'b', spans, 0);
      const closing = Date.now();
      await a.close();
      assert.ok(Date.now() - closing >= 900, `close returned after ${Date.now() - closing} ms, before the drive ended`);
      await waitFor(() => b.holds('close-drain'), 5_000, 'b to take the lease over');
      assertNoOverlap(spans);
    } finally {
      await Promise.all([a.close(), b.close()]);
    }
  });

  test('a drive that ignores its signal is let go after letGoWaitMs, and says so', async () => {
    const lines: string[] = [];
    const [a, b] = [new PgLeases(url, quietLog(lines), { retryMs: 100, letGoWaitMs: 800 }), new PgLeases(url, quietLog(), { retryMs: 100 })];
    try {
      const spans: Span[] = [];
      const followA = follow(a, 'stuck', 'a', spans, null);
      await waitFor(() => a.holds('stuck'), 5_000, 'a to hold the lease');
      follow(b, 'stuck', 'b', spans, 0);
      const stopped = Date.now();
      followA.stop();
      await waitFor(() => b.holds('stuck'), 5_000, 'b to take the stuck lease over');
      assert.ok(Date.now() - stopped >= 800, `taken over ${Date.now() - stopped} ms after the stop, before letGoWaitMs`);
      assert.ok(
        lines.some((l) => (JSON.parse(l) as { msg: string }).msg.includes('did not end when told to')),
        lines.join('\n'),
      );
    } finally {
      await Promise.all([a.close(), b.close()]);
    }
  });

  test('a holder whose session the server ends is told at once, and the other follower takes over', async () => {
    // a asks again only every 5 s, b every 100 ms: b is the one to take it over.
    const [a, b] = [new PgLeases(url, quietLog(), { retryMs: 5_000 }), new PgLeases(url, quietLog(), { retryMs: 100 })];
    const admin = new pg.Client({ connectionString: url });
    await admin.connect();
    try {
      let aborted = false;
      a.follow('cut', (held) => new Promise<void>((resolve) => held.addEventListener('abort', () => ((aborted = true), resolve()), { once: true })));
      await waitFor(() => a.holds('cut'), 5_000, 'a to hold the lease');
      b.follow('cut', (held) => new Promise<void>((resolve) => held.addEventListener('abort', () => resolve(), { once: true })));
      // The session holding the advisory lock: ended by the server, as a failover of the database would.
      const { rowCount } = await admin.query("SELECT pg_terminate_backend(l.pid) FROM pg_locks l WHERE l.locktype = 'advisory' AND l.granted AND l.pid <> pg_backend_pid()");
      assert.equal(rowCount, 1, 'one session held the lease');
      await waitFor(() => aborted, 5_000, "a's drive to be told it lost the lease");
      await waitFor(() => b.holds('cut'), 5_000, 'b to take the lease over');
    } finally {
      await admin.end();
      await Promise.all([a.close(), b.close()]);
    }
  });
});
