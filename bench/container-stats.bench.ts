/**
 * Stats for 200 running containers streamed to one open page: a private engine (busybox, each
 * container waking once a second), one real agent process and the hub as its own process;
 * Debian's chromium opens the Containers page with every row on screen (a viewport tall enough,
 * all rows shown), so every sparkline streams. For a fixed window it measures hub and agent CPU
 * (process CPU time over the window) and the page's frame rate (requestAnimationFrame callbacks
 * per second), with stats streamed and — in the same run, same page — with the feed switched off
 * (localStorage dockfleet.stats=off). Writes bench/results/container-stats.json.
 */
import { mkdir, mkdtemp, writeFile } from 'node:fs/promises';
import { loadavg, tmpdir } from 'node:os';
import { join } from 'node:path';
import type { Page } from 'playwright-core';
import { benchLog, runBench } from './lib/bench-run.ts';
import { policyJson, startAgentProcess, startHubProcess } from './lib/dockfleet-procs.ts';
import { machineFacts } from './lib/machine.ts';
import { cpuTotalSeconds, freePort, sleep, type Child } from './lib/proc.ts';
import { runContainer, startEngines, stopEngines, type TestEngine } from '../test/support/engines.ts';
import { launchBrowser } from '../test/support/browser.ts';
import { removeHubData } from '../test/support/hub-fixture.ts';

const CONTAINERS = Number(process.env.BENCH_STATS_CONTAINERS ?? 200);
const WINDOW_S = Number(process.env.BENCH_STATS_WINDOW_S ?? 20);
const NODE = 'stats-bench';
const PASSWORD = 'benchmark passphrase';
/** The first viewport; once every row is rendered it grows to the page's full height (rows are
 * about 135 px at 1280 px wide, their action buttons wrap: a guessed 70 px a row left half the rows
 * below the fold, and the page streams only rows on screen — the first run's 99 of 200). */
const VIEWPORT = { width: 1280, height: 400 + CONTAINERS * 70 };

interface Window {
  seconds: number;
  hubCpuPercent: number;
  agentCpuPercent: number;
  fps: number;
  sparklinesWithData: number;
  sparklinesOnScreen: number;
  containersInStatsStream: number;
}

/** How many containers the page's newest stats stream named (read from its URL). */
let lastStreamContainers = 0;
let viewportUsed = VIEWPORT;

/** One measured window: CPU time of hub and agent, and rAF callbacks counted inside the page. */
async function measureWindow(page: Page, hub: Child, agent: Child): Promise<Window> {
  // A string, not a function: tsx would wrap a named inner function in a helper the page lacks.
  await page.evaluate(`(() => {
    window.__frames = 0;
    window.__counting = true;
    const tick = () => { if (window.__counting) { window.__frames++; requestAnimationFrame(tick); } };
    requestAnimationFrame(tick);
  })()`);
  const hub0 = cpuTotalSeconds(hub.pid);
  const agent0 = cpuTotalSeconds(agent.pid);
  const t0 = performance.now();
  await sleep(WINDOW_S * 1000);
  const seconds = (performance.now() - t0) / 1000;
  const hubCpu = cpuTotalSeconds(hub.pid) - hub0;
  const agentCpu = cpuTotalSeconds(agent.pid) - agent0;
  const frames = await page.evaluate(() => {
    const w = window as unknown as { __frames: number; __counting: boolean };
    w.__counting = false;
    return w.__frames;
  });
  const sparklinesWithData = await page.evaluate(() => [...document.querySelectorAll('.sparkline polyline')].filter((p) => (p.getAttribute('points') ?? '') !== '').length);
  // Why a sparkline may have no data: off screen (the page streams only visible rows) or not asked for.
  const sparklinesOnScreen = await page.evaluate(
    () =>
      [...document.querySelectorAll('.sparkline')].filter((el) => {
        const r = el.getBoundingClientRect();
        return r.bottom > 0 && r.top < innerHeight;
      }).length,
  );
  const pct = (s: number): number => Math.round((s / seconds) * 1000) / 10;
  return {
    seconds: Math.round(seconds * 10) / 10,
    hubCpuPercent: pct(hubCpu),
    agentCpuPercent: pct(agentCpu),
    fps: Math.round((frames / seconds) * 10) / 10,
    sparklinesWithData,
    sparklinesOnScreen,
    containersInStatsStream: lastStreamContainers,
  };
}

/** Opens /containers with every row rendered and on screen. */
async function openAllRows(page: Page, url: string): Promise<void> {
  await page.goto(`${url}/containers?node=${NODE}`);
  await page.locator('.sparkline, td.cell-cpu').first().waitFor({ timeout: 60_000 });
  for (;;) {
    const more = page.getByRole('button', { name: /^Show \d+ more/ });
    if (!(await more.count())) break;
    await more.click();
  }
  await page.waitForFunction((n) => document.querySelectorAll('td.cell-cpu').length >= n, CONTAINERS, { timeout: 30_000 });
  const height = await page.evaluate(() => document.documentElement.scrollHeight);
  if (height > (page.viewportSize()?.height ?? 0)) await page.setViewportSize({ width: VIEWPORT.width, height: height + 100 });
  viewportUsed = page.viewportSize() ?? VIEWPORT;
}

runBench('container-stats', async () => {
  // Other work on this 2-core machine skews every figure: the load when the run began is recorded.
  const loadAtStart = loadavg().map((l) => Math.round(l * 100) / 100);
  const dataDir = await mkdtemp(join(tmpdir(), 'dockfleet-bench-stats-'));
  let engine: TestEngine | null = null;
  let hub: Awaited<ReturnType<typeof startHubProcess>> | null = null;
  let agent: Child | null = null;
  const browser = await launchBrowser();
  try {
    [engine] = (await startEngines(1, { prefix: 'benchstats' })) as [TestEngine];
    benchLog(`starting ${CONTAINERS} containers`);
    const ids: string[] = [];
    for (let i = 0; i < CONTAINERS; i += 8) {
      ids.push(
        ...(await Promise.all(
          Array.from({ length: Math.min(8, CONTAINERS - i) }, (_, k) => runContainer(engine!, { name: `s${String(i + k).padStart(3, '0')}`, cmd: ['sh', '-c', 'while :; do sleep 1; done'] })),
        )),
      );
    }
    hub = await startHubProcess(join(dataDir, 'hub'), `127.0.0.1:${await freePort()}`);
    const policyFile = join(dataDir, 'policy.json');
    await writeFile(policyFile, policyJson());
    agent = await startAgentProcess({ hub, name: NODE, stateDir: join(dataDir, 'agent'), docker: engine.dockerHost, policyFile });
    benchLog('hub and agent up');

    const { request } = await import('node:https');
    await new Promise<void>((resolve, reject) => {
      const req = request(
        new URL('/api/v1/users', hub!.url),
        { method: 'POST', ca: hub!.caPem, headers: { authorization: `Bearer ${hub!.token}`, 'content-type': 'application/json' } },
        (res) => (res.resume(), res.on('end', resolve)),
      );
      req.on('error', reject);
      req.end(JSON.stringify({ name: 'bench', role: 'admin', password: PASSWORD }));
    });
    const context = await browser.newContext({ ignoreHTTPSErrors: true, viewport: VIEWPORT });
    const page = await context.newPage();
    page.on('request', (r) => {
      if (r.url().includes('/api/v1/stats/stream')) lastStreamContainers = new URL(r.url()).searchParams.getAll('c').length;
    });
    await page.goto(hub.url);
    await page.getByLabel('Username').fill('bench');
    await page.getByLabel('Password').fill(PASSWORD);
    await page.getByRole('button', { name: 'Sign in' }).click();
    await page.getByRole('link', { name: 'Nodes' }).waitFor();

    // Without stats first: the same page, the feed switched off in this browser.
    await page.evaluate(() => localStorage.setItem('dockfleet.stats', 'off'));
    await openAllRows(page, hub.url);
    await sleep(3_000);
    benchLog('measuring without stats');
    const without = await measureWindow(page, hub.child, agent);

    await page.evaluate(() => localStorage.removeItem('dockfleet.stats'));
    await openAllRows(page, hub.url);
    // Every sparkline has a line (two points) before the window opens.
    await page
      .waitForFunction((n) => [...document.querySelectorAll('.sparkline polyline')].filter((p) => (p.getAttribute('points') ?? '') !== '').length >= n, CONTAINERS, { timeout: 60_000, polling: 500 })
      .catch(() => benchLog('not every sparkline had a line after 60 s; measuring anyway (see sparklinesWithData)'));
    benchLog('measuring with stats');
    const withStats = await measureWindow(page, hub.child, agent);

    const result = {
      bench: 'container-stats',
      at: new Date().toISOString(),
      machine: machineFacts(),
      loadAverageAtStart1m5m15m: loadAtStart,
      containers: CONTAINERS,
      windowSeconds: WINDOW_S,
      viewport: viewportUsed,
      withoutStats: without,
      withStats,
      notes: [
        'One private dockerd, busybox containers each running `while :; do sleep 1; done`; one agent process, the hub as its own process, Debian chromium (headless) on the same 2-core machine.',
        'The Containers page filtered to the node, every row shown ("Show more" clicked) in a viewport grown to the page’s full height so every row is on screen (sparklinesOnScreen checks it), so every sparkline streams (a normal viewport streams only the rows in view).',
        'CPU: process CPU time (user + system) over the window, in % of one core. fps: requestAnimationFrame callbacks per second in the page.',
        'Without stats: the same page with localStorage dockfleet.stats=off (no stats stream; the hub and agent sample nothing).',
      ],
    };
    await mkdir('bench/results', { recursive: true });
    await writeFile('bench/results/container-stats.json', `${JSON.stringify(result, null, 2)}\n`);
    console.log(JSON.stringify(result, null, 2));
  } finally {
    await browser.close();
    await agent?.stop();
    await hub?.child.stop();
    if (engine) await stopEngines([engine]);
    await removeHubData(dataDir);
  }
});
