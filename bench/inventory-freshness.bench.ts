/**
 * Inventory freshness with a real engine: from a container's start call returning to the
 * container showing as running in the hub's REST API (hub + agent + events + re-list), beside
 * the baseline of the same container showing in the engine's own /containers/json.
 * Writes bench/results/inventory-freshness.json.
 */
import { mkdtemp, mkdir, writeFile } from 'node:fs/promises';
import { cpus, tmpdir } from 'node:os';
import { join } from 'node:path';
import { runContainer, engineRequest, startEngines, stopEngines } from '../test/support/engines.ts';
import { mintCode, startTestHub, removeHubData } from '../test/support/hub-fixture.ts';
import { startTestAgent } from '../test/support/agent-fixture.ts';

const SAMPLES = Number(process.env.BENCH_SAMPLES ?? 100);
const BACKGROUND = Number(process.env.BENCH_BACKGROUND ?? 20);

function percentile(sorted: number[], p: number): number {
  return sorted[Math.min(sorted.length - 1, Math.ceil((p / 100) * sorted.length) - 1)]!;
}
function summary(values: number[]): { p50: number; p99: number; max: number; n: number } {
  const s = [...values].sort((a, b) => a - b);
  const r = (v: number): number => Math.round(v * 100) / 100;
  return { p50: r(percentile(s, 50)), p99: r(percentile(s, 99)), max: r(s.at(-1)!), n: s.length };
}

async function until(check: () => Promise<boolean>, timeoutMs = 5_000): Promise<number> {
  const t0 = performance.now();
  while (!(await check())) {
    if (performance.now() - t0 > timeoutMs) throw new Error('timed out');
    await new Promise((r) => setTimeout(r, 2));
  }
  return performance.now() - t0;
}

const [engine] = await startEngines(1, { prefix: 'fresh' });
const dataDir = await mkdtemp(join(tmpdir(), 'dockfleet-bench-fresh-'));
const hub = await startTestHub({ dataDir });
const agent = await startTestAgent({ hubUrl: hub.url, code: await mintCode(hub, 'bench'), docker: engine!.dockerHost });
try {
  await agent.waitConnected();
  // Some containers already there, so each re-list has real work to do.
  for (let i = 0; i < BACKGROUND; i++) await runContainer(engine!, { name: `bg-${i}` });
  const viaHub: number[] = [];
  const direct: number[] = [];
  for (let i = 0; i < SAMPLES; i++) {
    const id = await runContainer(engine!, { name: `sample-${i}`, start: false });
    await engineRequest(engine!.socketPath, 'POST', `/containers/${id}/start`);
    // Both pollers run at once from the same instant: the engine's own list and the hub's.
    const [hubMs, engineMs] = await Promise.all([
      until(async () => ((await hub.api('GET', '/api/v1/nodes/bench/containers')).json as Array<{ Id: string; State: string }>).some((c) => c.Id === id && c.State === 'running')),
      until(async () => ((await engineRequest(engine!.socketPath, 'GET', '/containers/json')).json as Array<{ Id: string }>).some((c) => c.Id === id)),
    ]);
    viaHub.push(hubMs);
    direct.push(engineMs);
    await engineRequest(engine!.socketPath, 'DELETE', `/containers/${id}?force=1`);
  }
  const result = {
    bench: 'inventory-freshness',
    at: new Date().toISOString(),
    machine: { cpus: cpus().length, node: process.version },
    containersOnHost: BACKGROUND,
    startToVisibleInHubMs: summary(viaHub),
    baselineStartToVisibleInEngineListMs: summary(direct),
    targetP99Ms: 500,
  };
  await mkdir('bench/results', { recursive: true });
  await writeFile('bench/results/inventory-freshness.json', `${JSON.stringify(result, null, 2)}\n`);
  console.log(JSON.stringify(result, null, 2));
} finally {
  await agent.stop();
  await hub.stop();
  await stopEngines([engine!]);
  await removeHubData(dataDir);
}
