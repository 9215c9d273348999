// Per-node host use in /metrics (issue 16): a real hub in this process, a real `dockfleet agent`
// process reporting its host's CPU busy share and available memory every 500 ms, CPU burnt in
// child processes on every core to see the ratio rise, promtool checking the text, and a
// simulated agent that predates these reports, which the hub takes and exports no such series for.
// Run: CI=true node --import tsx --test test/metrics-host-usage.test.ts
import assert from 'node:assert/strict';
import { spawn, spawnSync, type ChildProcess } from 'node:child_process';
import { mkdtemp, readFile, rm, stat } from 'node:fs/promises';
import https from 'node:https';
import { availableParallelism, tmpdir, totalmem } from 'node:os';
import { join } from 'node:path';
import { after, before, test } from 'node:test';
import { startSimulatedFleet, type SimulatedFleet } from '../bench/agent-simulator.ts';
import { NO_ENGINE } from './support/agent-fixture.ts';
import { mintCode, startTestHub, type TestHub } from './support/hub-fixture.ts';
import { spawnDockfleet, type DockfleetProcess } from './support/processes.ts';

const NODE = 'usage-node';
const OLD = 'usage-old';
const PROMTOOL = '/usr/bin/promtool';
const REPORT_MS = 500;

let hub: TestHub;
let agent: DockfleetProcess;
let oldFleet: SimulatedFleet;
let dir: string;
let scrapeToken: string;
const burners: ChildProcess[] = [];

function scrape(): Promise<string> {
  return new Promise((resolve, reject) => {
    const req = https.request(new URL('/metrics', hub.url), { ca: hub.caPem, headers: { authorization: `Bearer ${scrapeToken}` } }, (res) => {
      const chunks: Buffer[] = [];
      res.on('data', (c: Buffer) => chunks.push(c));
      res.on('end', () => (res.statusCode === 200 ? resolve(Buffer.concat(chunks).toString('utf8')) : reject(new Error(`GET /metrics: ${res.statusCode}`))));
    });
    req.on('error', reject);
    req.end();
  });
}

function sample(text: string, series: string): number | null {
  const line = text.split('\n').find((l) => l.startsWith(`${series} `));
  return line === undefined ? null : Number(line.slice(series.length + 1));
}

const cpuOf = (text: string, node: string): number | null => sample(text, `dockfleet_node_cpu_usage_ratio{node="${node}"}`);
const availableOf = (text: string, node: string): number | null => sample(text, `dockfleet_node_memory_available_bytes{node="${node}"}`);
const sleep = (ms: number): Promise<void> => new Promise((r) => setTimeout(r, ms));

async function until<T>(what: string, probe: () => Promise<T | null>, timeoutMs = 15_000): Promise<T> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const value = await probe();
    if (value !== null) return value;
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await sleep(100);
  }
}

/** The CPU ratio the hub exports for NODE, read once per report for `forMs`; their median. */
async function medianCpu(forMs: number): Promise<number> {
  const values: number[] = [];
  const deadline = Date.now() + forMs;
  while (Date.now() < deadline) {
    const v = cpuOf(await scrape(), NODE);
    if (v !== null) values.push(v);
    await sleep(REPORT_MS);
  }
  assert.ok(values.length >= 3, `only ${values.length} CPU readings`);
  values.sort((a, b) => a - b);
  return values[Math.floor(values.length / 2)]!;
}

function stopBurners(): void {
  for (const child of burners.splice(0)) if (child.pid !== undefined && child.exitCode === null && child.signalCode === null) process.kill(child.pid, 'SIGKILL');
}

before(async () => {
  await stat(PROMTOOL); // under CI a missing tool fails, never skips
  dir = await mkdtemp(join(tmpdir(), 'dockfleet-usage-'));
  hub = await startTestHub();
  scrapeToken = (await readFile(join(hub.dataDir, 'metrics.token'), 'utf8')).trim();
  const code = await mintCode(hub, NODE);
  agent = spawnDockfleet(['agent', '--hub', hub.url, '--code', code, '--name', NODE, '--state', join(dir, 'state'), '--docker', NO_ENGINE, '--policy', join(dir, 'no-policy.json')], {
    DOCKFLEET_TEST_HOST_USAGE_MS: String(REPORT_MS),
  });
  await agent.waitForLine(new RegExp(`agent ${NODE} connected`), 20_000);
  oldFleet = await startSimulatedFleet({ hubUrl: hub.url, caPem: hub.caPem, token: hub.token, count: 1, namePrefix: OLD, hostUsage: false });
});

after(async () => {
  stopBurners();
  await oldFleet?.stop();
  await agent?.stop();
  await hub?.stop();
  if (dir) await rm(dir, { recursive: true, force: true });
});

test("a connected agent's host use appears in /metrics with plausible values, and in the node's REST view", async () => {
  const text = await until('the first host-usage report in /metrics', async () => {
    const t = await scrape();
    return cpuOf(t, NODE) !== null && availableOf(t, NODE) !== null ? t : null;
  });
  const cpu = cpuOf(text, NODE)!;
  const available = availableOf(text, NODE)!;
  assert.ok(cpu >= 0 && cpu <= 1, `CPU ratio ${cpu}`);
  // The agent runs on this machine: its available memory is positive and at most the total.
  assert.ok(available > 0 && available <= totalmem(), `available ${available} of ${totalmem()}`);
  assert.match(text, /^# TYPE dockfleet_node_cpu_usage_ratio gauge$/m);
  assert.match(text, /^# TYPE dockfleet_node_memory_available_bytes gauge$/m);

  const nodes = await hub.api('GET', '/api/v1/nodes');
  const view = (nodes.json as Array<{ name: string; usage?: { cpuBusyRatio: number | null; memoryAvailableBytes: number | null; at: string } | null }>).find((n) => n.name === NODE);
  assert.ok(view?.usage, 'usage in the node view');
  assert.ok(view.usage.cpuBusyRatio !== null && view.usage.cpuBusyRatio >= 0 && view.usage.cpuBusyRatio <= 1);
  assert.ok(view.usage.memoryAvailableBytes !== null && view.usage.memoryAvailableBytes > 0);
  assert.ok(Date.now() - Date.parse(view.usage.at) < 10_000, 'a recent report');
});

test('burning CPU on every core makes the reported CPU ratio rise above what it was before', async () => {
  const idle = await medianCpu(3_000);
  const cores = availableParallelism();
  for (let i = 0; i < cores; i++) {
    burners.push(spawn(process.execPath, ['-e', 'const end = Date.now() + 20000; while (Date.now() < end) {}'], { stdio: 'ignore' }));
  }
  try {
    await sleep(2 * REPORT_MS); // the first report after the start still covers some idle time
    const busy = await medianCpu(3_000);
    // Another test may share these cores: with a loop on each, the host is near fully busy
    // whatever it was doing, so ask for a clear rise, capped where a busy host must get to.
    assert.ok(busy >= Math.min(0.9, idle + 0.2), `CPU ratio ${busy} while burning ${cores} cores, ${idle} before`);
  } finally {
    stopBurners();
  }
});

test('the output with host-use series passes promtool check metrics', async () => {
  const text = await scrape();
  assert.ok(cpuOf(text, NODE) !== null, 'the series are in this scrape');
  const checked = spawnSync(PROMTOOL, ['check', 'metrics'], { input: text, encoding: 'utf8' });
  assert.equal(`${checked.stdout}${checked.stderr}`.trim(), '', 'promtool reported problems');
  assert.equal(checked.status, 0);
});

test('an agent that predates host-use reports is taken as before: online, with no such series and no usage', async () => {
  const [old] = oldFleet.nodes;
  assert.ok(old);
  const text = await until('the old agent online with its engine facts', async () => {
    const t = await scrape();
    return sample(t, `dockfleet_node_cpus{node="${old}"}`) !== null ? t : null;
  });
  await sleep(3 * REPORT_MS);
  const later = await scrape();
  for (const t of [text, later]) {
    assert.equal(cpuOf(t, old), null);
    assert.equal(availableOf(t, old), null);
  }
  assert.equal(sample(later, `dockfleet_node_engine_up{node="${old}"}`), 1);
  const nodes = await hub.api('GET', '/api/v1/nodes');
  const view = (nodes.json as Array<{ name: string; status: string; usage?: unknown }>).find((n) => n.name === old);
  assert.equal(view?.status, 'online');
  assert.equal(view?.usage, null);
});

test('a node whose agent went away exports no host use (no stale values)', async () => {
  await agent.stop();
  const text = await until('the node offline', async () => {
    const t = await scrape();
    return sample(t, 'dockfleet_nodes{state="offline"}') === 1 ? t : null;
  });
  assert.equal(cpuOf(text, NODE), null);
  assert.equal(availableOf(text, NODE), null);
});
