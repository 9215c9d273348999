// Container stats end to end against a real engine: a real agent process samples through the
// Engine API only while the hub's stats feed is open; CPU and memory come out as `docker stats`
// computes them. Run: CI=true node --import tsx --test test/container-stats.test.ts
import assert from 'node:assert/strict';
import https from 'node:https';
import type { IncomingMessage } from 'node:http';
import { after, before, test } from 'node:test';
import { runContainer } from './support/engines.ts';
import { waitFor } from './support/hub-fixture.ts';
import { startNodeRig, stopNodeRig, type NodeRig } from './support/node-rig.ts';
import { pointOf, countersOf, memoryUsage } from '../src/agent/stats/stats-math.ts';
import { parseProcStat, parseMeminfo } from '../src/agent/stats/host-usage.ts';
import { parseSelection } from '../src/hub/stats/stats-events.ts';
import { StatsRing } from '../src/hub/stats/stats-ring.ts';

const NODE = 'stats-a';
let rig: NodeRig;
let burner: string;
let eater: string;
let idle: string;

before(async () => {
  rig = await startNodeRig('stats', NODE);
  [burner, eater, idle] = await Promise.all([
    runContainer(rig.engine, { cmd: ['sh', '-c', 'while :; do :; done'] }),
    // Holds 48 MiB in /dev/shm (tmpfs: charged to the container, never reclaimable page cache).
    runContainer(rig.engine, { cmd: ['sh', '-c', 'head -c 50331648 /dev/zero > /dev/shm/fill; sleep 3600'] }),
    runContainer(rig.engine),
  ]);
});

after(async () => {
  if (rig) await stopNodeRig(rig);
});

interface Feed {
  events: Array<{ event: string; data: any }>;
  res: IncomingMessage;
  close(): void;
}

function openFeed(query: string, token = rig.hub.token): Promise<Feed> {
  return new Promise((resolve, reject) => {
    const req = https.get(new URL(`/api/v1/stats/stream?${query}`, rig.hub.url), { ca: rig.hub.caPem, headers: { authorization: `Bearer ${token}` } }, (res) => {
      const feed: Feed = { events: [], res, close: () => req.destroy() };
      let buf = '';
      res.setEncoding('utf8');
      res.on('data', (chunk: string) => {
        buf += chunk;
        for (let i = buf.indexOf('\n\n'); i !== -1; i = buf.indexOf('\n\n')) {
          const block = buf.slice(0, i);
          buf = buf.slice(i + 2);
          const event = /^event: (.*)$/m.exec(block)?.[1];
          const data = /^data: (.*)$/m.exec(block)?.[1];
          if (event && data) feed.events.push({ event, data: JSON.parse(data) });
        }
      });
      res.on('error', () => {});
      resolve(feed);
    });
    req.on('error', reject);
  });
}

const ticks = (feed: Feed) => feed.events.filter((e) => e.event === 'tick').map((e) => e.data);
const pointsOf = (feed: Feed, id: string) => ticks(feed).flatMap((t) => t.containers.filter((c: { id: string }) => c.id === id));
/** How many burner points the first page saw: the next page's history holds at least those. */
let burnerPointsSeen = 0;
const samplingLines = (what: 'started' | 'stopped') =>
  rig.agent
    .stderr()
    .split('\n')
    .filter((l) => l.includes(`"stats sampling ${what}"`)).length;

test('nothing is sampled while nobody watches', async () => {
  await new Promise((r) => setTimeout(r, 1500));
  assert.equal(samplingLines('started'), 0, 'the agent sampled before any page watched');
});

test('a container burning CPU shows more than 50 % within a few seconds; an allocating one shows its memory', async () => {
  const feed = await openFeed(`c=${NODE}/${burner}&c=${NODE}/${eater}&host=${NODE}`);
  try {
    assert.equal(feed.res.statusCode, 200);
    const started = Date.now();
    const hot = await waitFor(() => pointsOf(feed, burner).find((p) => p.cpuPercent > 50), 8_000, 'CPU > 50 % for the busy loop');
    assert.ok(Date.now() - started < 8_000);
    assert.ok(hot.cpuPercent <= 205, `CPU ${hot.cpuPercent} % on a 2-core machine`);
    const fat = await waitFor(() => pointsOf(feed, eater).find((p) => p.memUsage > 40 * 1024 * 1024), 10_000, `memory of the allocating container (seen: ${pointsOf(feed, eater).at(-1)?.memUsage})`);
    assert.ok(fat.memLimit >= fat.memUsage, 'a memory limit (the host total when unlimited)');
    const host = await waitFor(() => ticks(feed).find((t) => t.host && t.host.memTotal > 0)?.host, 5_000, 'host use');
    assert.ok(host.cpus >= 1 && host.memUsed > 0 && host.memUsed < host.memTotal);
    // Only what was asked for: the idle container is not in the feed.
    assert.equal(pointsOf(feed, idle).length, 0);
    assert.equal(samplingLines('started'), 1);
    burnerPointsSeen = pointsOf(feed, burner).length;
  } finally {
    feed.close();
  }
});

test('when the page stops watching, the agent stops sampling; a new page gets the recent history', async () => {
  const stoppedBefore = samplingLines('stopped');
  await waitFor(() => samplingLines('stopped') > stoppedBefore, 5_000, 'agent log: stats sampling stopped');
  const startedBefore = samplingLines('started');
  await new Promise((r) => setTimeout(r, 2_500));
  assert.equal(samplingLines('started'), startedBefore, 'sampling started again with nobody watching');
  const feed = await openFeed(`c=${NODE}/${burner}`);
  try {
    const history = await waitFor(() => feed.events.find((e) => e.event === 'history')?.data, 3_000, 'history');
    assert.ok(burnerPointsSeen > 0 && history.containers[0].points.length >= burnerPointsSeen, `the hub kept the recent points (${history.containers[0].points.length} of ${burnerPointsSeen})`);
    await waitFor(() => pointsOf(feed, burner).length >= 2, 6_000, 'ticks again');
    // Sampling restarted: its first sample has nothing to compare with and must not show as a dip to 0 %.
    assert.ok(
      pointsOf(feed, burner).every((p) => p.cpuPercent > 0),
      `a false zero after the restart: ${pointsOf(feed, burner)
        .map((p) => p.cpuPercent)
        .join(', ')}`,
    );
  } finally {
    feed.close();
  }
});

test('forty containers watched at once all get points within seconds (the engine answers each one-shot call after about 1 s, so asking a few at a time fell behind)', async () => {
  const many: string[] = [];
  for (let i = 0; i < 40; i += 8) many.push(...(await Promise.all(Array.from({ length: 8 }, () => runContainer(rig.engine, { cmd: ['sh', '-c', 'while :; do sleep 1; done'] })))));
  const feed = await openFeed(many.map((id) => `c=${NODE}/${id}`).join('&'));
  try {
    assert.equal(feed.res.statusCode, 200);
    const started = Date.now();
    // Two points each: what a sparkline needs to draw a line.
    const lagging = () => many.filter((id) => pointsOf(feed, id).length < 2);
    await waitFor(() => lagging().length === 0, 12_000, 'two points for every container').catch(() => {
      assert.fail(`${lagging().length} of ${many.length} containers had fewer than two points after ${Date.now() - started} ms`);
    });
    assert.ok(Date.now() - started < 12_000);
  } finally {
    feed.close();
  }
});

test('the feed refuses bad input and callers without credentials', async () => {
  const bad = await openFeed('c=not-a-node-and-id');
  assert.equal(bad.res.statusCode, 400);
  bad.close();
  const anon = await openFeed(`c=${NODE}/${burner}`, 'wrong-token');
  assert.equal(anon.res.statusCode, 401);
  anon.close();
  assert.throws(() => parseSelection(Array.from({ length: 501 }, () => `c=${NODE}/${'a'.repeat(64)}`).join('&')), /at most 500/);
});

test('the arithmetic: docker stats formulas, restarts, /proc parsing, the ring', () => {
  const a = {
    cpu_stats: { cpu_usage: { total_usage: 1e9 }, system_cpu_usage: 100e9, online_cpus: 2 },
    memory_stats: { usage: 100, limit: 1000, stats: { inactive_file: 30 } },
    networks: { eth0: { rx_bytes: 1000, tx_bytes: 0 } },
  };
  const b = { ...a, cpu_stats: { cpu_usage: { total_usage: 2e9 }, system_cpu_usage: 102e9, online_cpus: 2 }, networks: { eth0: { rx_bytes: 3000, tx_bytes: 0 } } };
  const p = pointOf('a'.repeat(12), b, countersOf(b, 2000), countersOf(a, 1000));
  assert.equal(p.cpuPercent, 100); // 1 s of CPU over 2 s of two CPUs' system time × 2 CPUs
  assert.equal(p.netRx, 2000);
  assert.equal(memoryUsage(a), 70);
  // A counter going backwards (restart) is zero, not negative.
  assert.equal(pointOf('a'.repeat(12), a, countersOf(a, 3000), countersOf(b, 2000)).netRx, 0);
  assert.deepEqual(parseProcStat('cpu  10 0 10 80 0 0 0 0 0 0\ncpu0 5 0 5 40\ncpu1 5 0 5 40\n'), { busy: 20, total: 100, cpus: 2 });
  assert.deepEqual(parseMeminfo('MemTotal:       1000 kB\nMemFree: 1 kB\nMemAvailable:    400 kB\n'), { used: 600 * 1024, total: 1000 * 1024 });
  const ring = new StatsRing<number>(3);
  for (const n of [1, 2, 3, 4, 5]) ring.push(n);
  assert.deepEqual(ring.toArray(), [3, 4, 5]);
});
