/** The audit log records what a call is about to do before the hub forwards it, and how it
 * ended after: rows carry the start time, and a hub killed in the middle of a `docker cp`
 * leaves the row behind, read back after a restart as interrupted. Real hub process, agent and
 * engine. */
import assert from 'node:assert/strict';
import https from 'node:https';
import type { ClientRequest } from 'node:http';
import { mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, test } from 'node:test';
import { runContainer, startEngines, stopEngines, type TestEngine } from './support/engines.ts';
import { waitFor } from './support/hub-fixture.ts';
import { startTestAgent, type TestAgent } from './support/agent-fixture.ts';
import { spawnDockfleet, type DockfleetProcess } from './support/processes.ts';
import WebSocket from 'ws';
import { hubRequest } from './support/hub-request.ts';

interface AuditView {
  id: number;
  method: string;
  path: string;
  status: number | null;
  startedAt: string;
  finishedAt: string | null;
  outcome: string;
}

let engines: TestEngine[];
let work: string;
let dataDir: string;
let hubProcess: DockfleetProcess;
let hubUrl: string;
let token: string;
let caPem: string;
let agent: TestAgent;

async function startHub(): Promise<void> {
  hubProcess = spawnDockfleet(['hub', '--data', dataDir, '--listen', '127.0.0.1:0']);
  hubUrl = /hub ready (https:\S+)/.exec(await hubProcess.waitForLine(/hub ready https:/, 30_000))![1]!;
  token = (await readFile(join(dataDir, 'admin.token'), 'utf8')).trim();
  caPem = await readFile(join(dataDir, 'pki', 'ca.pem'), 'utf8');
}

const auth = (): Record<string, string> => ({ authorization: `Bearer ${token}` });

async function audit(): Promise<AuditView[]> {
  const res = await hubRequest(hubUrl, caPem, '/api/v1/audit?node=audit-0&limit=1000', { headers: auth() });
  assert.equal(res.status, 200, res.text);
  return res.json as AuditView[];
}

before(async () => {
  engines = await startEngines(1, { prefix: 'audit' });
  work = await mkdtemp(join(tmpdir(), 'dockfleet-audit-'));
  dataDir = join(work, 'hub');
  await startHub();
  const code = await hubRequest(hubUrl, caPem, '/api/v1/enrollments', { method: 'POST', headers: { ...auth(), 'content-type': 'application/json' }, body: JSON.stringify({ name: 'audit-0' }) });
  assert.equal(code.status, 201, code.text);
  // docker cp into a container needs the archive section, off by default.
  const policy = join(work, 'policy.json');
  const on = ['ping', 'version', 'info', 'events', 'system', 'containers', 'exec', 'images', 'volumes', 'networks', 'archive'];
  await writeFile(policy, JSON.stringify({ sections: Object.fromEntries(on.map((s) => [s, true])) }));
  agent = await startTestAgent({ hubUrl, code: code.json.code, docker: engines[0]!.dockerHost, policy });
  await agent.waitConnected();
});

after(async () => {
  await agent?.stop();
  await hubProcess?.stop();
  await stopEngines(engines ?? []);
  if (work) await rm(work, { recursive: true, force: true });
});

test('a row carries the call’s start time, before its finish time, and its outcome', async () => {
  await runContainer(engines[0]!, { name: 'sleeper', cmd: ['sleep', '1'] });
  const sent = Date.now();
  const waited = await hubRequest(hubUrl, caPem, '/docker/nodes/audit-0/v1.41/containers/sleeper/wait', { method: 'POST', headers: auth(), timeoutMs: 15_000 });
  const answered = Date.now();
  assert.equal(waited.status, 200, waited.text);
  const row = await waitFor(async () => (await audit()).find((r) => r.path.endsWith('/containers/sleeper/wait') && r.status !== null), 5_000, 'the finished row');
  const started = Date.parse(row.startedAt);
  const finished = Date.parse(row.finishedAt ?? '');
  assert.ok(started >= sent - 5 && started <= sent + 300, `started ${started - sent} ms after the call was sent`);
  assert.ok(finished - started >= 500, `the row spans the call: ${finished - started} ms`);
  assert.ok(finished <= answered + 50);
  assert.equal(row.outcome, 'ok');
  assert.equal(row.status, 200);
});

test('a terminal session is in the audit log while it is open, and finishes when it closes', async () => {
  await runContainer(engines[0]!, { name: 'shell' });
  const ws = new WebSocket(`${hubUrl.replace(/^https/, 'wss')}/api/v1/nodes/audit-0/containers/shell/terminal`, { ca: caPem, headers: auth() });
  await new Promise((resolve, reject) => {
    ws.once('open', resolve);
    ws.once('error', reject);
  });
  const open = await waitFor(async () => (await audit()).find((r) => r.path === '/containers/shell/exec (terminal)'), 5_000, 'the session row');
  assert.equal(open.outcome, 'running', 'the row is there while the session runs');
  ws.close();
  const closed = await waitFor(async () => (await audit()).find((r) => r.id === open.id && r.finishedAt !== null), 5_000, 'the session outcome');
  assert.equal(closed.status, 101);
  assert.equal(closed.outcome, 'ok');
});

test('a hub SIGKILLed during a slow docker cp leaves the row, read back as interrupted', async () => {
  await runContainer(engines[0]!, { name: 'target' });
  // A tar upload that sends its first 512 bytes and then stalls.
  const upload: ClientRequest = https.request(new URL('/docker/nodes/audit-0/v1.41/containers/target/archive?path=/tmp', hubUrl), {
    method: 'PUT',
    ca: caPem,
    agent: false,
    headers: { ...auth(), 'content-type': 'application/x-tar', 'transfer-encoding': 'chunked' },
  });
  upload.on('error', () => {});
  const sent = Date.now();
  upload.write(Buffer.alloc(512, 0x61));
  const open = await waitFor(async () => (await audit()).find((r) => r.method === 'PUT' && r.path.includes('/containers/target/archive')), 5_000, 'the intent, while the copy runs');
  assert.equal(open.outcome, 'running');
  assert.equal(open.status, null);
  hubProcess.signal('SIGKILL');
  await hubProcess.exited;
  upload.destroy();
  await startHub();
  const row = (await audit()).find((r) => r.id === open.id);
  assert.ok(row, 'the row survived the kill');
  assert.equal(row.outcome, 'interrupted');
  assert.equal(row.status, null);
  assert.equal(row.finishedAt, null);
  assert.ok(Math.abs(Date.parse(row.startedAt) - sent) < 1_000, 'it carries the start time');
});
