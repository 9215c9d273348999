/**
 * Scale-out (issue 17's numbers), each beside its baseline in the same run:
 *   1. N simulated agents (bench/agent-simulator.ts, the real channel protocol) spread over three
 *      `dockfleet hub` replica processes on a private PostgreSQL and nats-server: time until all
 *      are online after a cold start (all replicas SIGKILLed and started together), and after one
 *      replica is SIGKILLed (its agents back on the others; target ≤ 30 s); RSS per agent per
 *      replica. Baseline: the same N on one hub with SQLite (fleet-scale's setup), killed and
 *      restarted.
 *   2. GET /_ping through the docker endpoint to a node held by the replica asked vs by another
 *      one: p50/p99 and the difference (target ≤ +1 ms p50), calls alternated so noise hits both.
 *   3. A streamed export (BENCH_STREAM_MIB, default 1024) through the non-holding replica vs the
 *      holding one: throughput ratio (target ≥ 0.8×), rounds alternated after one untimed export each.
 * The simulated agents answer _ping and stream the export from memory (no engine), so the figures
 * are the hubs' and the peer link's own cost. Writes bench/results/scale-out.json.
 *
 *   node --import tsx bench/scale-out.bench.ts
 * Knobs (env): BENCH_AGENTS=10000  BENCH_PINGS=2000  BENCH_STREAM_MIB=1024  BENCH_STREAM_ROUNDS=3
 *              BENCH_SETTLE_MS=5000  BENCH_CONNECT_CONCURRENCY=64  BENCH_SKIP_BASELINE=1
 *              BENCH_SIM_LOG=FILE (the simulator's lines, timestamped)
 *              BENCH_SIM_NODE_ARGS='--cpu-prof --cpu-prof-dir=DIR' (Node flags for the simulator)
 */
import { appendFileSync, rmSync } from 'node:fs';
import { mkdir, mkdtemp, writeFile } from 'node:fs/promises';
import { availableParallelism, cpus, loadavg, tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { removeHubData } from '../test/support/hub-fixture.ts';
import { startNats, type TestNats } from '../test/support/nats.ts';
import { startPostgres, type PostgresServer } from '../test/support/postgres.ts';
import { benchLog, runBench } from './lib/bench-run.ts';
import { childEnv, ROOT, startHubProcess, type HubProcess } from './lib/dockfleet-procs.ts';
import { envInt } from './lib/env-int.ts';
import { TimedClient, type Target } from './lib/http-timing.ts';
import { HubHttp } from './lib/hub-http.ts';
import { freePort, rssBytes, sleep, startChild, type Child } from './lib/proc.ts';
import { startReplicaSet, type ReplicaSet } from './lib/replicas.ts';
import { median, summarize, type LatencySummary } from './lib/stats.ts';

const RESULTS = join(ROOT, 'bench', 'results', 'scale-out.json');
const AGENTS = envInt('BENCH_AGENTS', 10_000, { integer: true });
const PINGS = envInt('BENCH_PINGS', 2000, { integer: true });
const STREAM_BYTES = envInt('BENCH_STREAM_MIB', 1024, { integer: true }) * 1024 * 1024;
const STREAM_ROUNDS = envInt('BENCH_STREAM_ROUNDS', 3, { integer: true });
/** How long a fleet may take to come back before the run gives up: measured, not judged. */
const BACK_TIMEOUT_MS = Math.max(180_000, AGENTS * 40);
const SETTLE_MS = envInt('BENCH_SETTLE_MS', 5_000);
const CONNECT_CONCURRENCY = envInt('BENCH_CONNECT_CONCURRENCY', 64, { integer: true });
const SKIP_BASELINE = process.env.BENCH_SKIP_BASELINE === '1';
const TARGETS = { onlineAfterKillMs: 30_000, remoteP50AddedMs: 1, streamRatio: 0.8 };
const REPLICAS = 3;
/** Every simulated agent dials from 127.0.0.1: the hub's caps per address (4,096 agent links, a
 * site's NAT; 256 connections still in their handshake) are raised past N, as an operator with
 * more hosts behind one NAT would. */
const HUB_ARGS = ['--max-agent-links-per-address', String(AGENTS + 64), '--max-connections-per-address', String(AGENTS + 64)];
const PREFIX = 'so';

const tempDirs = new Set<string>();
process.on('exit', () => {
  for (const dir of tempDirs) rmSync(dir, { recursive: true, force: true });
});

const round = (n: number, digits = 2): number => Math.round(n * 10 ** digits) / 10 ** digits;
const nodeName = (i: number): string => `${PREFIX}-${String(i).padStart(String(AGENTS - 1).length, '0')}`;

/** The simulator as a child process, its `simulated K connected` lines kept with their times. */
interface Sim {
  child: Child;
  /** Resolves when a `simulated K connected` line after `after` satisfies `ok`. */
  waitCount(ok: (k: number) => boolean, after: number, timeoutMs: number): Promise<number>;
  byHub(): Record<string, number>;
  where(node: string): Promise<string>;
  stats(): { connects: number; drops: number };
}

function startSim(hubUrl: string, caFile: string, tokenFile: string, hubs: string[] | null): Sim {
  // BENCH_SIM_NODE_ARGS: extra Node flags for the simulator (e.g. --cpu-prof --cpu-prof-dir=DIR, written when it stops).
  const nodeArgs = (process.env.BENCH_SIM_NODE_ARGS ?? '').split(' ').filter(Boolean);
  const args = [...nodeArgs, '--import', 'tsx', join(ROOT, 'bench', 'agent-simulator.ts'), '--hub', hubUrl, '--ca', caFile, '--token-file', tokenFile];
  args.push('--count', String(AGENTS), '--prefix', PREFIX, '--concurrency', String(CONNECT_CONCURRENCY), '--watch-stdin', '--control-stdin');
  args.push('--docker-ping', '--export-bytes', String(STREAM_BYTES));
  if (hubs) args.push('--hubs', hubs.join(','));
  const child = startChild('agent-simulator', process.execPath, args, { cwd: ROOT, env: childEnv() });
  // BENCH_SIM_LOG=FILE: the simulator's lines, timestamped, to watch a long run as it goes.
  const simLog = process.env.BENCH_SIM_LOG;
  if (simLog) child.onLine((line, at) => appendFileSync(simLog, `${new Date(at).toISOString()} ${line}\n`));
  const counts: Array<{ k: number; at: number }> = [];
  let byHub: Record<string, number> = {};
  let stats = { connects: 0, drops: 0 };
  child.onLine((line, at) => {
    const c = /^simulated (\d+) connected$/.exec(line);
    if (c) counts.push({ k: Number(c[1]), at });
    const s = /^stats connects=(\d+) drops=(\d+)$/.exec(line);
    if (s) stats = { connects: Number(s[1]), drops: Number(s[2]) };
    if (line.startsWith('by-hub')) {
      byHub = Object.fromEntries(
        line
          .slice('by-hub'.length)
          .trim()
          .split(' ')
          .filter(Boolean)
          .map((kv) => {
            const eq = kv.lastIndexOf('=');
            return [kv.slice(0, eq), Number(kv.slice(eq + 1))];
          }),
      );
    }
  });
  return {
    child,
    byHub: () => ({ ...byHub }),
    stats: () => ({ ...stats }),
    async waitCount(ok, after, timeoutMs) {
      const deadline = Date.now() + timeoutMs;
      for (;;) {
        const hit = counts.find((c) => c.at >= after && ok(c.k));
        if (hit) return hit.at;
        if (child.proc.exitCode !== null) throw new Error(`simulator exited: ${child.tail().slice(-5).join('\n')}`);
        if (Date.now() > deadline) throw new Error(`simulator: no matching count within ${timeoutMs} ms (last: ${counts.at(-1)?.k ?? 'none'})`);
        await sleep(20);
      }
    },
    async where(node) {
      const answer = child.waitForLine(new RegExp(`^where ${node} `), 5_000);
      child.proc.stdin!.write(`where ${node}\n`);
      return (await answer).line.split(' ')[2]!;
    },
  };
}

/** Polls GET /api/v1/nodes on `hubUrl` until `n` are online; the time it saw that. */
async function waitOnline(hubUrl: string, caPem: string, token: string, n: number, timeoutMs: number): Promise<number> {
  const http = new HubHttp(hubUrl, caPem, token, 1);
  const deadline = Date.now() + timeoutMs;
  let last = -1;
  try {
    for (;;) {
      try {
        const nodes = await http.json<Array<{ status: string }>>('GET', '/api/v1/nodes', undefined, { timeoutMs: 10_000 });
        last = nodes.filter((x) => x.status === 'online').length;
        if (last >= n) return Date.now();
      } catch {
        // busy or restarting: poll again
      }
      if (Date.now() > deadline) throw new Error(`${hubUrl}: only ${last} of ${n} online after ${timeoutMs} ms`);
      await sleep(200);
    }
  } finally {
    http.close();
  }
}

async function medianRss(pid: number): Promise<number> {
  const samples: number[] = [];
  for (let i = 0; i < 5; i++) {
    if (i > 0) await sleep(300);
    samples.push(rssBytes(pid));
  }
  return median(samples);
}

const tokenTarget = (url: string, caPem: string, token: string): Target => ({ kind: 'https', base: url, caPem, headers: { authorization: `Bearer ${token}` } });

/** `count` pings through each client in turn (same, other, same, …) so drift and noise hit both. */
async function alternatePings(clients: Record<string, TimedClient>, node: string, count: number): Promise<Record<string, { ms: LatencySummary; errors: number }>> {
  const path = `/docker/nodes/${node}/_ping`;
  const labels = Object.keys(clients);
  for (const l of labels) for (let i = 0; i < 100; i++) await clients[l]!.request(path);
  const ms: Record<string, number[]> = Object.fromEntries(labels.map((l) => [l, []]));
  const errors: Record<string, number> = Object.fromEntries(labels.map((l) => [l, 0]));
  for (let i = 0; i < count; i++) {
    for (const l of i % 2 === 0 ? labels : [...labels].reverse()) {
      const r = await clients[l]!.request(path);
      if (r.status === 200) ms[l]!.push(r.ms);
      else errors[l]!++;
    }
  }
  return Object.fromEntries(labels.map((l) => [l, { ms: summarize(ms[l]!), errors: errors[l]! }]));
}

/** Export rounds through each client in turn; MB/s per round (1 MB = 10^6 bytes). */
async function alternateStreams(clients: Record<string, TimedClient>, node: string): Promise<Record<string, { MBps: number[]; medianMBps: number; bytes: number }>> {
  const path = `/docker/nodes/${node}/containers/bench/export`;
  const out: Record<string, { MBps: number[]; medianMBps: number; bytes: number }> = {};
  const labels = Object.keys(clients);
  // One untimed export per path first: the first stream through a fresh path is always slower.
  for (const l of labels) await clients[l]!.request(path, { timeoutMs: 600_000 });
  for (let round_ = 0; round_ < STREAM_ROUNDS; round_++) {
    for (const l of round_ % 2 === 0 ? labels : [...labels].reverse()) {
      const r = await clients[l]!.request(path, { timeoutMs: 600_000 });
      if (r.status !== 200 || r.bytes !== STREAM_BYTES) throw new Error(`export through ${l}: HTTP ${r.status}, ${r.bytes} of ${STREAM_BYTES} bytes`);
      out[l] ??= { MBps: [], medianMBps: 0, bytes: r.bytes };
      out[l]!.MBps.push(round(r.bytes / 1e6 / (r.ms / 1000), 1));
    }
  }
  for (const v of Object.values(out)) v.medianMBps = median(v.MBps);
  return out;
}

/** Baseline: one hub, SQLite, the same N agents; the kill is a SIGKILL and restart in place. */
async function runBaseline(): Promise<Record<string, unknown>> {
  const parent = await mkdtemp(join(tmpdir(), 'dockfleet-bench-single-'));
  tempDirs.add(parent);
  const dataDir = join(parent, 'data');
  const listen = `127.0.0.1:${await freePort()}`;
  let hub: HubProcess | null = null;
  let sim: Sim | null = null;
  try {
    hub = await startHubProcess(dataDir, listen, 'single-hub', HUB_ARGS);
    await sleep(1_000);
    const idleRss = await medianRss(hub.child.pid);
    const t0 = Date.now();
    sim = startSim(hub.url, hub.caFile, join(dataDir, 'admin.token'), null);
    const enrolled = await sim.child.waitForLine(/^enrolled \d+/, 120_000 + AGENTS * 100);
    const allAt = await sim.waitCount((k) => k === AGENTS, 0, 60_000 + AGENTS * 60);
    await waitOnline(hub.url, hub.caPem, hub.token, AGENTS, 60_000);
    await sleep(SETTLE_MS);
    const withRss = await medianRss(hub.child.pid);
    const client = new TimedClient(tokenTarget(hub.url, hub.caPem, hub.token));
    const pings = await alternatePings({ local: client }, nodeName(0), PINGS);
    const streams = await alternateStreams({ local: client }, nodeName(0));
    client.close();
    // SIGKILL, restart on the same DIR and port: time until every agent is back.
    const killedAt = Date.now();
    hub.child.kill('SIGKILL');
    await hub.child.exited;
    hub = await startHubProcess(dataDir, listen, 'single-hub', HUB_ARGS);
    const readyAt = Date.now();
    await sim.waitCount((k) => k < AGENTS, killedAt, 30_000);
    const backAt = await sim.waitCount((k) => k === AGENTS, killedAt, BACK_TIMEOUT_MS);
    const apiAt = await waitOnline(hub.url, hub.caPem, hub.token, AGENTS, 120_000);
    return {
      enrollMs: enrolled.at - t0,
      firstConnectAllMs: allAt - enrolled.at,
      rss: { idleBytes: idleRss, withAgentsBytes: withRss, bytesPerAgent: Math.round((withRss - idleRss) / AGENTS) },
      ping: pings.local,
      stream: streams.local,
      restart: { killToReadyMs: readyAt - killedAt, killToAllConnectedMs: backAt - killedAt, killToAllOnlineApiMs: apiAt - killedAt },
    };
  } finally {
    await sim?.child.stop(10_000);
    await hub?.child.stop(10_000);
    await removeHubData(parent);
    tempDirs.delete(parent);
  }
}

async function runCluster(): Promise<Record<string, unknown>> {
  let pg: PostgresServer | null = null;
  let nats: TestNats | null = null;
  let set: ReplicaSet | null = null;
  let sim: Sim | null = null;
  try {
    pg = await startPostgres();
    nats = await startNats();
    set = await startReplicaSet(REPLICAS, await pg.freshDatabase(), nats.url, HUB_ARGS);
    for (const d of set.dirs) tempDirs.add(d);
    const s = set;
    const urls = s.replicas.map((r) => r.url);
    const origin = (u: string): string => new URL(u).origin;
    await sleep(1_000);
    const idleRss = await Promise.all(s.replicas.map((r) => medianRss(r.child!.pid)));

    // 1a. Enroll through A, connect spread over A, B, C (node i dials replica i mod 3 first).
    const t0 = Date.now();
    sim = startSim(urls[0]!, s.caFile, s.tokenFile, urls);
    const enrolled = await sim.child.waitForLine(/^enrolled \d+/, 120_000 + AGENTS * 100);
    const allAt = await sim.waitCount((k) => k === AGENTS, 0, 60_000 + AGENTS * 60);
    for (const u of urls) await waitOnline(u, s.caPem, s.token, AGENTS, 60_000);
    await sleep(Math.max(SETTLE_MS, 2_500)); // the simulator's by-hub line comes every 2 s
    const rssPerReplica = async (): Promise<Array<Record<string, number | string>>> =>
      Promise.all(
        s.replicas.map(async (r, i) => {
          const rss = await medianRss(r.child!.pid);
          const held = sim!.byHub()[origin(r.url)] ?? 0;
          return { replica: r.id, agents: held, idleBytes: idleRss[i]!, withAgentsBytes: rss, bytesPerAgent: held > 0 ? Math.round((rss - idleRss[i]!) / held) : 0 };
        }),
      );
    const rssAfterEnroll = await rssPerReplica();

    // 2 and 3. A node held by A, asked through A (same) and through B (other).
    const node = nodeName(0);
    const holder = await sim.where(node);
    if (holder !== origin(urls[0]!)) throw new Error(`${node} is on ${holder}, expected replica A (${origin(urls[0]!)})`);
    const clients = { same: new TimedClient(tokenTarget(urls[0]!, s.caPem, s.token)), other: new TimedClient(tokenTarget(urls[1]!, s.caPem, s.token)) };
    benchLog(`cluster: ${PINGS} pings each, same vs other replica`);
    const pings = await alternatePings(clients, node, PINGS);
    benchLog(`cluster: ${STREAM_ROUNDS} × ${STREAM_BYTES / 1024 / 1024} MiB exports each, holder vs non-holder`);
    const streams = await alternateStreams(clients, node);
    for (const c of Object.values(clients)) c.close();

    // 1b. Cold start: every replica SIGKILLed, all started together.
    benchLog('cluster: cold start of all replicas');
    const coldKilledAt = Date.now();
    await Promise.all(s.replicas.map((_, i) => s.kill(i)));
    await Promise.all(s.replicas.map((_, i) => s.start(i)));
    const allReadyAt = Math.max(...s.replicas.map((r) => r.readyAt));
    await sim.waitCount((k) => k < AGENTS, coldKilledAt, 30_000);
    const coldBackAt = await sim.waitCount((k) => k === AGENTS, coldKilledAt, BACK_TIMEOUT_MS);
    const coldApiAt = Math.max(...(await Promise.all(urls.map((u) => waitOnline(u, s.caPem, s.token, AGENTS, 120_000)))));
    await sleep(Math.max(SETTLE_MS, 2_500));
    const rssAfterCold = await rssPerReplica();

    // 1c. One replica (C) SIGKILLed: its agents must come back on A and B.
    const victim = REPLICAS - 1;
    const victimOrigin = origin(urls[victim]!);
    const onVictim = sim.byHub()[victimOrigin] ?? 0;
    benchLog(`cluster: SIGKILL of ${s.replicas[victim]!.id} holding ${onVictim} agents`);
    const killedAt = Date.now();
    await s.kill(victim);
    await sim.waitCount((k) => k < AGENTS, killedAt, 30_000);
    const backAt = await sim.waitCount((k) => k === AGENTS, killedAt, BACK_TIMEOUT_MS);
    const survivors = urls.filter((_, i) => i !== victim);
    const apiAt = Math.max(...(await Promise.all(survivors.map((u) => waitOnline(u, s.caPem, s.token, AGENTS, 120_000)))));
    // Calls to nodes that were on C succeed again through each survivor.
    const moved = Array.from({ length: Math.min(50, Math.floor(AGENTS / REPLICAS)) }, (_, j) => nodeName(victim + j * REPLICAS));
    let movedOk = 0;
    for (const u of survivors) {
      const c = new TimedClient(tokenTarget(u, s.caPem, s.token));
      for (const n of moved) if ((await c.request(`/docker/nodes/${n}/_ping`)).status === 200) movedOk++;
      c.close();
    }
    await sleep(2_500);
    const byHubAfterKill = sim.byHub();

    const p50Added = round(pings.other!.ms.p50 - pings.same!.ms.p50, 3);
    const ratio = round(streams.other!.medianMBps / streams.same!.medianMBps, 3);
    return {
      replicas: s.replicas.map((r) => r.id),
      enrollMs: enrolled.at - t0,
      firstConnectAllMs: allAt - enrolled.at,
      rssPerReplica: { afterEnrollAndConnect: rssAfterEnroll, afterColdStart: rssAfterCold },
      coldStart: { killToAllReadyMs: allReadyAt - coldKilledAt, readyToAllConnectedMs: coldBackAt - allReadyAt, readyToAllOnlineApiMs: coldApiAt - allReadyAt },
      replicaKilled: {
        replica: s.replicas[victim]!.id,
        agentsItHeld: onVictim,
        killToAllConnectedMs: backAt - killedAt,
        killToAllOnlineApiMs: apiAt - killedAt,
        withinTarget: backAt - killedAt <= TARGETS.onlineAfterKillMs,
        movedNodesPingOk: `${movedOk}/${moved.length * survivors.length}`,
        connectedByHubAfter: byHubAfterKill,
      },
      dockerPing: {
        sameReplica: pings.same,
        otherReplica: pings.other,
        p50AddedMs: p50Added,
        p99AddedMs: round(pings.other!.ms.p99 - pings.same!.ms.p99, 3),
        withinTarget: p50Added <= TARGETS.remoteP50AddedMs,
      },
      stream: { bytes: STREAM_BYTES, holder: streams.same, nonHolder: streams.other, ratio, withinTarget: ratio >= TARGETS.streamRatio },
      agentLinks: sim.stats(),
    };
  } catch (err) {
    // Say what each part was doing when it failed.
    for (const r of set?.replicas ?? [])
      benchLog(`${r.id} (${r.child ? `pid ${r.child.pid}` : 'stopped'}), its last lines:\n${r.lastLines.join('\n')}\n${r.child?.tail().slice(-10).join('\n') ?? ''}`);
    if (sim) benchLog(`simulator: ${JSON.stringify(sim.stats())} by hub ${JSON.stringify(sim.byHub())}; stderr:\n${sim.child.tail().slice(-15).join('\n')}`);
    throw err;
  } finally {
    await sim?.child.stop(10_000);
    await set?.stopAll();
    await nats?.close();
    await pg?.stop();
    for (const d of set?.dirs ?? []) {
      await removeHubData(d);
      tempDirs.delete(d);
    }
  }
}

async function main(): Promise<void> {
  const started = Date.now();
  benchLog(`scale-out: ${AGENTS} agents, ${REPLICAS} replicas, ${STREAM_BYTES / 1024 / 1024} MiB streams`);
  const baseline = SKIP_BASELINE ? null : await runBaseline();
  // Said at once: a cluster part that fails later must not take the baseline's figures with it.
  if (baseline) benchLog(`scale-out: baseline (one hub, SQLite) done: ${JSON.stringify(baseline)}`);
  const cluster = await runCluster();
  const result = {
    bench: 'scale-out',
    timestamp: new Date().toISOString(),
    durationMs: Date.now() - started,
    machine: { nproc: availableParallelism(), cpuModel: cpus()[0]?.model ?? null, loadAverage1m5m15m: loadavg().map((x) => round(x)), node: process.version },
    config: { agents: AGENTS, replicas: REPLICAS, pings: PINGS, streamBytes: STREAM_BYTES, streamRounds: STREAM_ROUNDS, settleMs: SETTLE_MS, connectConcurrency: CONNECT_CONCURRENCY },
    targets: TARGETS,
    notes: [
      `Every hub and replica runs with ${HUB_ARGS.join(' ')}: all simulated agents dial from 127.0.0.1, and the default caps per address (4,096 agent links, one site's NAT; 256 connections still in their handshake) would hold the rest back.`,
      'Agents are bench/agent-simulator.ts processes speaking the real channel protocol; they answer _ping and stream the export from memory (no engine), so figures are hub and peer-link cost.',
      'Cluster: node i dials replica i mod 3 first and follows the replica list the hub hands it; the bench reads which replica holds each node from the simulator.',
      "Times to 'all connected' are from the simulator's own count (each agent's handshake done); 'online API' is GET /api/v1/nodes on every (surviving) replica showing all N online, polled every 200 ms.",
      "bytesPerAgent = (replica RSS with its agents − its RSS right after start) / agents it holds; afterEnrollAndConnect includes replica A's enrollment traffic, afterColdStart does not.",
      'Pings and export rounds alternate between the two paths so drift and noise fall on both; MB = 10^6 bytes.',
      'Native relay (bench/lib/native-relay.ts) is not run here: with no engine behind the simulated agent there is no socket for it; docker-gateway.bench.ts has that comparison for one hub.',
    ],
    baseline,
    cluster,
  };
  await mkdir(dirname(RESULTS), { recursive: true });
  await writeFile(RESULTS, `${JSON.stringify(result, null, 2)}\n`);
  process.stdout.write(`${JSON.stringify({ baseline, cluster: { ...cluster, rssPerReplica: undefined } }, null, 2)}\n`);
  benchLog(`wrote ${RESULTS} (${((Date.now() - started) / 1000).toFixed(0)} s)`);
}

runBench('scale-out', main);
