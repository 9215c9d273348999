/** Liveness across real processes: a 5 s stall raises no alarm, a dead link is seen within
 * 15 s, a pause of both ends is not taken for a dead link, a SIGKILLed hub comes back with
 * every agent on its own, a killed agent goes offline. */
import assert from 'node:assert/strict';
import { mkdtemp, readFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, test } from 'node:test';
import { freePort, spawnDockfleet, type DockfleetProcess } from './support/processes.ts';
import { NO_ENGINE } from './support/agent-fixture.ts';
import { removeHubData } from './support/hub-fixture.ts';

let dataDir: string;
let port: number;
let hub: DockfleetProcess;
const agents = new Map<string, DockfleetProcess>();

async function statusOf(name: string): Promise<string | undefined> {
  const token = (await readFile(join(dataDir, 'admin.token'), 'utf8')).trim();
  const ca = await readFile(join(dataDir, 'pki', 'ca.pem'), 'utf8');
  const { request } = await import('node:https');
  return new Promise((resolve, reject) => {
    const req = request(`https://127.0.0.1:${port}/api/v1/nodes`, { ca, headers: { authorization: `Bearer ${token}` }, agent: false }, (res) => {
      let body = '';
      res.on('data', (c) => (body += c));
      res.on('end', () => resolve((JSON.parse(body) as Array<{ name: string; status: string }>).find((n) => n.name === name)?.status));
    });
    req.on('error', reject);
    req.end();
  });
}

async function until(what: string, timeoutMs: number, check: () => Promise<boolean>): Promise<number> {
  const started = Date.now();
  while (!(await check())) {
    if (Date.now() - started > timeoutMs) throw new Error(`${what}: not within ${timeoutMs} ms`);
    await new Promise((r) => setTimeout(r, 100));
  }
  return Date.now() - started;
}

async function startHub(): Promise<DockfleetProcess> {
  const p = spawnDockfleet(['hub', '--data', dataDir, '--listen', `127.0.0.1:${port}`]);
  await p.waitForLine(/hub ready https:\/\/127\.0\.0\.1:\d+/);
  return p;
}

async function startAgent(name: string): Promise<DockfleetProcess> {
  const enroll = spawnDockfleet(['enroll', name, '--data', dataDir]);
  assert.equal((await enroll.exited).code, 0, enroll.stderr());
  const code = enroll.stdout().trim().split('\n').at(-1)!;
  const p = spawnDockfleet(['agent', '--hub', `https://127.0.0.1:${port}`, '--code', code, '--state', join(dataDir, `agent-${name}`), '--docker', NO_ENGINE]);
  await p.waitForLine(new RegExp(`agent ${name} connected`));
  agents.set(name, p);
  return p;
}

before(async () => {
  dataDir = await mkdtemp(join(tmpdir(), 'dockfleet-live-'));
  port = await freePort();
  hub = await startHub();
});
after(async () => {
  for (const a of agents.values()) await a.stop();
  await hub.stop();
  await removeHubData(dataDir);
});

test('a 5 s stall of the agent raises no false alarm', async () => {
  const agent = await startAgent('blip');
  agent.signal('SIGSTOP');
  const stalledUntil = Date.now() + 5_000;
  const seen = new Set<string>();
  while (Date.now() < stalledUntil) {
    seen.add((await statusOf('blip'))!);
    await new Promise((r) => setTimeout(r, 250));
  }
  agent.signal('SIGCONT');
  for (let i = 0; i < 8; i++) {
    seen.add((await statusOf('blip'))!);
    await new Promise((r) => setTimeout(r, 250));
  }
  assert.deepEqual([...seen], ['online']);
  assert.equal(agent.stdout().match(/connected/g)?.length, 1, 'no reconnect either');
});

test('a dead link is declared offline within 15 s, and the agent comes back after', async () => {
  const agent = agents.get('blip')!;
  const lines = agent.lineCount();
  agent.signal('SIGSTOP');
  const took = await until('offline', 16_000, async () => (await statusOf('blip')) === 'offline');
  assert.ok(took <= 15_000, `offline after ${took} ms`);
  agent.signal('SIGCONT');
  await agent.waitForLine(/agent blip connected/, 15_000, lines);
  assert.equal(await statusOf('blip'), 'online');
});

test('a 12 s pause of hub and agent together (a stalled machine) drops no link', async () => {
  // Both sides' timers fire late on waking, before either has read what the other sent: a
  // liveness check that judged then would call a live link dead (own-stall.ts).
  const agent = agents.get('blip')!;
  const lines = agent.lineCount();
  hub.signal('SIGSTOP');
  agent.signal('SIGSTOP');
  await new Promise((r) => setTimeout(r, 12_000));
  hub.signal('SIGCONT');
  agent.signal('SIGCONT');
  const seen = new Set<string>();
  for (let i = 0; i < 20; i++) {
    seen.add((await statusOf('blip'))!);
    await new Promise((r) => setTimeout(r, 250));
  }
  assert.deepEqual([...seen], ['online']);
  const since = agent.stdout().split('\n').slice(lines).join('\n');
  assert.doesNotMatch(since, /connected|silent/, 'the agent reconnected after the pause');
});

test('a hub killed with SIGKILL restarts and its agents come back on their own, nothing lost', async () => {
  await startAgent('phoenix');
  const before = { blip: agents.get('blip')!.lineCount(), phoenix: agents.get('phoenix')!.lineCount() };
  hub.signal('SIGKILL');
  await hub.exited;
  hub = await startHub();
  const started = Date.now();
  await agents.get('blip')!.waitForLine(/agent blip connected/, 30_000, before.blip);
  await agents.get('phoenix')!.waitForLine(/agent phoenix connected/, 30_000, before.phoenix);
  const took = Date.now() - started;
  assert.ok(took < 15_000, `agents back after ${took} ms`);
  assert.equal(await statusOf('blip'), 'online');
  assert.equal(await statusOf('phoenix'), 'online');
});

test('an agent killed with SIGKILL goes offline at once; the hub stays up', async () => {
  const agent = agents.get('phoenix')!;
  agent.signal('SIGKILL');
  await agent.exited;
  agents.delete('phoenix');
  const took = await until('offline', 3_000, async () => (await statusOf('phoenix')) === 'offline');
  assert.ok(took < 3_000);
  assert.equal(await statusOf('blip'), 'online');
});
