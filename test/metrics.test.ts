// Prometheus metrics at GET /metrics: a real hub in this process, a real agent on a private
// engine with a container running, Debian's promtool checking the text, and Debian's prometheus
// scraping the hub over https with the scrape token and answering queries about the fleet.
// Run: CI=true node --import tsx --test test/metrics.test.ts
import assert from 'node:assert/strict';
import { spawn, spawnSync, type ChildProcess } from 'node:child_process';
import { mkdtemp, readFile, rm, stat, writeFile } from 'node:fs/promises';
import https from 'node:https';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, test } from 'node:test';
import { runContainer, startEngines, stopEngines, type TestEngine } from './support/engines.ts';
import { mintCode, startTestHub, type TestHub } from './support/hub-fixture.ts';
import { startTestAgent, type TestAgent } from './support/agent-fixture.ts';
import { freePort } from './support/processes.ts';

const NODE = 'metrics-node';
const PROMETHEUS = '/usr/bin/prometheus';
const PROMTOOL = '/usr/bin/promtool';

let engine: TestEngine;
let hub: TestHub;
let agent: TestAgent;
let containerId: string;
let scrapeToken: string;
let dir: string;
let prometheus: ChildProcess | null = null;
let prometheusLog = '';

function get(path: string, token?: string): Promise<{ status: number; headers: Record<string, unknown>; text: string }> {
  return new Promise((resolve, reject) => {
    const req = https.request(new URL(path, hub.url), { ca: hub.caPem, headers: token ? { authorization: `Bearer ${token}` } : {} }, (res) => {
      const chunks: Buffer[] = [];
      res.on('data', (c: Buffer) => chunks.push(c));
      res.on('end', () => resolve({ status: res.statusCode ?? 0, headers: res.headers, text: Buffer.concat(chunks).toString('utf8') }));
    });
    req.on('error', reject);
    req.end();
  });
}

/** The value of one sample in the exposition text (labels as written by prom-client), or null. */
function sample(text: string, series: string): number | null {
  const line = text.split('\n').find((l) => l.startsWith(`${series} `));
  return line === undefined ? null : Number(line.slice(series.length + 1));
}

async function until<T>(what: string, probe: () => Promise<T | null>, timeoutMs = 30_000): Promise<T> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const value = await probe();
    if (value !== null) return value;
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 250));
  }
}

before(async () => {
  for (const bin of [PROMETHEUS, PROMTOOL]) await stat(bin); // under CI a missing tool fails, never skips
  [engine] = (await startEngines(1, { prefix: 'metrics' })) as [TestEngine];
  dir = await mkdtemp(join(tmpdir(), 'dockfleet-metrics-'));
  hub = await startTestHub();
  agent = await startTestAgent({ hubUrl: hub.url, code: await mintCode(hub, NODE), name: NODE, docker: engine.dockerHost });
  await agent.waitConnected();
  containerId = await runContainer(engine, { name: 'metered' });
  await until("the container in the hub's inventory", async () => {
    const res = await hub.api('GET', `/api/v1/nodes/${NODE}/containers`);
    return Array.isArray(res.json) && res.json.some((c: { Id: string; State: string }) => c.Id === containerId && c.State === 'running') ? true : null;
  });
  scrapeToken = (await readFile(join(hub.dataDir, 'metrics.token'), 'utf8')).trim();
});

after(async () => {
  if (prometheus?.pid !== undefined && prometheus.exitCode === null) {
    const exited = new Promise((r) => prometheus!.once('exit', r));
    process.kill(prometheus.pid, 'SIGTERM');
    await Promise.race([exited, new Promise((r) => setTimeout(r, 10_000))]);
    if (prometheus.exitCode === null) process.kill(prometheus.pid, 'SIGKILL');
  }
  await agent?.stop();
  await hub?.stop();
  if (engine) await stopEngines([engine]);
  if (dir) await rm(dir, { recursive: true, force: true });
});

test('the hub writes a scrape token to DIR/metrics.token, readable by its owner only', async () => {
  assert.match(scrapeToken, /^dft_[A-Za-z0-9_-]{20,}$/);
  assert.equal((await stat(join(hub.dataDir, 'metrics.token'))).mode & 0o777, 0o600);
});

test("GET /metrics without a token, with a wrong one, or with a viewer's token is refused in the API's error format", async () => {
  const none = await get('/metrics');
  assert.equal(none.status, 401);
  assert.equal(JSON.parse(none.text).error.code, 'unauthenticated');
  const wrong = await get('/metrics', 'dft_not-a-token-this-hub-ever-made');
  assert.equal(wrong.status, 401);
  assert.equal(JSON.parse(wrong.text).error.code, 'unauthenticated');
  const viewer = await hub.api('POST', '/api/v1/users', { name: 'watcher', role: 'viewer' });
  assert.equal(viewer.status, 201);
  const refused = await get('/metrics', viewer.json.token);
  assert.equal(refused.status, 403);
  assert.equal(JSON.parse(refused.text).error.code, 'forbidden');
});

test('the scrape token opens /metrics and nothing else; the admin token opens it too', async () => {
  const scraped = await get('/metrics', scrapeToken);
  assert.equal(scraped.status, 200);
  assert.match(String(scraped.headers['content-type']), /^text\/plain; version=0\.0\.4/);
  assert.match(scraped.text, /^# HELP dockfleet_nodes /m);
  assert.equal((await get('/metrics', hub.token)).status, 200);
  // Not an API token: the REST API does not take it.
  assert.equal((await hub.api('GET', '/api/v1/nodes', undefined, scrapeToken)).status, 401);
});

test('the output passes promtool check metrics, and holds no token and no container id', async () => {
  // A few Docker calls through the hub first, so the gateway's series are in the text too.
  for (const path of ['/_ping', '/containers/json', `/containers/${containerId}/json`, '/images/json']) {
    const res = await get(`/docker/nodes/${NODE}${path}`, hub.token);
    assert.equal(res.status, 200, `${path}: ${res.text}`);
  }
  assert.equal((await get('/docker/nodes/no-such-node/containers/json', hub.token)).status, 404);
  const { text } = await get('/metrics', scrapeToken);
  const checked = spawnSync(PROMTOOL, ['check', 'metrics'], { input: text, encoding: 'utf8' });
  assert.equal(`${checked.stdout}${checked.stderr}`.trim(), '', 'promtool reported problems');
  assert.equal(checked.status, 0);
  for (const secret of [scrapeToken, hub.token]) assert.ok(!text.includes(secret), 'a token in the metrics');
  assert.ok(!text.includes(containerId.slice(0, 12)), 'a container id in the metrics');
  assert.ok(!text.includes('metered'), 'a container name in the metrics');

  assert.equal(sample(text, 'dockfleet_nodes{state="online"}'), 1);
  assert.equal(sample(text, 'dockfleet_agents_connected'), 1);
  assert.ok((sample(text, `dockfleet_node_containers{node="${NODE}",state="running"}`) ?? 0) >= 1);
  assert.ok((sample(text, `dockfleet_node_cpus{node="${NODE}"}`) ?? 0) >= 1);
  assert.ok((sample(text, `dockfleet_node_memory_bytes{node="${NODE}"}`) ?? 0) > 0);
  assert.equal(sample(text, `dockfleet_gateway_requests_total{node="${NODE}",section="containers",status="200"}`), 2);
  assert.equal(sample(text, `dockfleet_gateway_requests_total{node="${NODE}",section="system",status="200"}`), 1);
  assert.equal(sample(text, 'dockfleet_gateway_requests_total{node="_unknown",section="containers",status="404"}'), 1);
  assert.equal(sample(text, `dockfleet_gateway_request_duration_seconds_count{node="${NODE}",section="images"}`), 1);
  assert.ok((sample(text, 'dockfleet_agent_heartbeat_round_trip_seconds_count') ?? 0) >= 1);
  assert.ok((sample(text, 'dockfleet_agent_link_bytes_total{direction="from_agents"}') ?? 0) > 1000);
  assert.ok((sample(text, 'dockfleet_agent_link_bytes_total{direction="to_agents"}') ?? 0) > 100);
  assert.equal(sample(text, 'dockfleet_jobs{state="queued"}'), 0);
  assert.equal(sample(text, 'dockfleet_audit_write_failures_total'), 0);
  assert.equal(sample(text, 'dockfleet_terminal_sessions'), 0);
  assert.ok(sample(text, 'process_cpu_seconds_total') !== null, "prom-client's process metrics");
});

test('an agent that connects again is counted as a reconnect of its node', async () => {
  await agent.stop();
  await until('the node offline', async () => (sample((await get('/metrics', scrapeToken)).text, 'dockfleet_nodes{state="offline"}') === 1 ? true : null));
  agent = await startTestAgent({ hubUrl: hub.url, stateDir: agent.stateDir, docker: engine.dockerHost });
  await agent.waitConnected();
  const { text } = await get('/metrics', scrapeToken);
  assert.equal(sample(text, `dockfleet_agent_reconnects_total{node="${NODE}"}`), 1);
  assert.equal(sample(text, 'dockfleet_nodes{state="online"}'), 1);
});

test("Debian's prometheus scrapes the hub over https with the scrape token, and its queries see the fleet", async () => {
  const port = await freePort();
  await writeFile(join(dir, 'ca.pem'), hub.caPem);
  const config = [
    'global:',
    '  scrape_interval: 1s',
    '  scrape_timeout: 1s',
    'scrape_configs:',
    '  - job_name: dockfleet',
    '    scheme: https',
    '    tls_config:',
    `      ca_file: ${join(dir, 'ca.pem')}`,
    '    authorization:',
    `      credentials_file: ${join(hub.dataDir, 'metrics.token')}`,
    '    static_configs:',
    `      - targets: ['${new URL(hub.url).host}']`,
    '',
  ].join('\n');
  await writeFile(join(dir, 'prometheus.yml'), config);
  prometheus = spawn(PROMETHEUS, [`--config.file=${join(dir, 'prometheus.yml')}`, `--storage.tsdb.path=${join(dir, 'tsdb')}`, `--web.listen-address=127.0.0.1:${port}`], {
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  for (const s of [prometheus.stdout, prometheus.stderr]) s?.on('data', (c: Buffer) => void (prometheusLog = (prometheusLog + c.toString()).slice(-8_000)));
  await new Promise((r) => setTimeout(r, 0));
  // A few calls through the hub while Prometheus watches.
  for (let i = 0; i < 3; i++) assert.equal((await get(`/docker/nodes/${NODE}/volumes`, hub.token)).status, 200);

  const query = async (expr: string): Promise<Array<{ metric: Record<string, string>; value: [number, string] }> | null> => {
    if (prometheus?.exitCode !== null) throw new Error(`prometheus exited: ${prometheusLog}`);
    try {
      const res = await fetch(`http://127.0.0.1:${port}/api/v1/query?query=${encodeURIComponent(expr)}`);
      if (!res.ok) return null;
      const body = (await res.json()) as { status: string; data: { result: Array<{ metric: Record<string, string>; value: [number, string] }> } };
      return body.status === 'success' && body.data.result.length > 0 ? body.data.result : null;
    } catch {
      return null; // not listening yet
    }
  };
  const value = async (expr: string, ok: (v: number) => boolean): Promise<number> => {
    try {
      return await until(
        expr,
        async () => {
          const result = await query(expr);
          const v = result ? Number(result[0]!.value[1]) : null;
          return v !== null && ok(v) ? v : null;
        },
        60_000,
      );
    } catch (err) {
      const targets = await fetch(`http://127.0.0.1:${port}/api/v1/targets`)
        .then((r) => r.text())
        .catch(() => '(no answer)');
      throw new Error(`${(err as Error).message}\ntargets: ${targets}\nprometheus: ${prometheusLog}`);
    }
  };
  assert.equal(await value('up{job="dockfleet"}', (v) => v === 1), 1);
  assert.equal(await value('dockfleet_nodes{state="online"}', (v) => v === 1), 1);
  assert.ok((await value(`dockfleet_node_containers{node="${NODE}",state="running"}`, (v) => v >= 1)) >= 1);
  assert.equal(await value(`sum(dockfleet_gateway_requests_total{node="${NODE}",section="volumes"})`, (v) => v >= 3), 3);
  assert.ok((await value('dockfleet_agent_heartbeat_round_trip_seconds_count', (v) => v >= 1)) >= 1);
  const running = await query(`dockfleet_node_containers{state="running"}`);
  assert.deepEqual(
    running?.map((r) => r.metric.node),
    [NODE],
  );
});
