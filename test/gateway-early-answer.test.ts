/**
 * An upload the engine answers before reading it (a 404 for a container that does not exist)
 * must end cleanly at the hub: the client gets the answer, the hub stops forwarding the body and
 * resets the stream, and its memory stays put. Before the fix the hub's HTTP/2 session went on
 * sending empty DATA frames for a stream Node had already dropped: the event loop held, the
 * client never answered, memory up by ~100 MB/s (16 GB within a minute). The hub runs as its
 * own process here, so a relapse fails this test instead of stalling the test runner.
 */
import assert from 'node:assert/strict';
import https from 'node:https';
import { mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, test } from 'node:test';
import { startEngines, stopEngines, type TestEngine } from './support/engines.ts';
import { startTestAgent, type TestAgent } from './support/agent-fixture.ts';
import { spawnDockfleet, type DockfleetProcess } from './support/processes.ts';
import { hubRequest } from './support/hub-request.ts';

let engines: TestEngine[] = [];
let hub: DockfleetProcess | undefined;
let agent: TestAgent | undefined;
let work = '';
let hubUrl = '';
let token = '';
let caPem = '';

async function rssMiB(pid: number): Promise<number> {
  const status = await readFile(`/proc/${pid}/status`, 'utf8');
  return Number(/VmRSS:\s+(\d+)/.exec(status)![1]) / 1024;
}

/** A PUT of `size` bytes in 1 MiB writes, chunked or sized; resolves with the status, or 'no answer'. */
function upload(size: number, chunked: boolean, deadlineMs: number): Promise<number | 'no answer'> {
  return new Promise((resolve) => {
    const headers: Record<string, string> = { authorization: `Bearer ${token}`, 'content-type': 'application/x-tar' };
    if (!chunked) headers['content-length'] = String(size);
    const req = https.request(new URL('/docker/nodes/early-0/v1.41/containers/no-such-container/archive?path=/tmp', hubUrl), { method: 'PUT', headers, ca: caPem, agent: false }, (res) => {
      res.resume();
      res.on('end', () => {
        clearTimeout(timer);
        resolve(res.statusCode ?? 0);
      });
    });
    const timer = setTimeout(() => {
      req.destroy();
      resolve('no answer');
    }, deadlineMs);
    req.on('error', () => {
      /* the hub may stop reading the rest of the body: the answer decides */
    });
    const body = Buffer.alloc(size, 7);
    for (let i = 0; i < size; i += 1 << 20) req.write(body.subarray(i, Math.min(size, i + (1 << 20))));
    req.end();
  });
}

before(async () => {
  engines = await startEngines(1, { prefix: 'early' });
  work = await mkdtemp(join(tmpdir(), 'dockfleet-early-'));
  hub = spawnDockfleet(['hub', '--data', join(work, 'hub'), '--listen', '127.0.0.1:0']);
  hubUrl = /hub ready (https:\S+)/.exec(await hub.waitForLine(/hub ready https:/, 30_000))![1]!;
  token = (await readFile(join(work, 'hub', 'admin.token'), 'utf8')).trim();
  caPem = await readFile(join(work, 'hub', 'pki', 'ca.pem'), 'utf8');
  const code = await hubRequest(hubUrl, caPem, '/api/v1/enrollments', {
    method: 'POST',
    headers: { authorization: `Bearer ${token}`, 'content-type': 'application/json' },
    body: JSON.stringify({ name: 'early-0' }),
  });
  assert.equal(code.status, 201, code.text);
  const policy = join(work, 'policy.json');
  await writeFile(policy, JSON.stringify({ sections: { ping: true, version: true, containers: true, archive: true } }));
  agent = await startTestAgent({ hubUrl, code: code.json.code, docker: engines[0]!.dockerHost, policy });
  await agent.waitConnected();
});

after(async () => {
  await agent?.stop();
  if (hub) {
    hub.signal('SIGKILL');
    await hub.exited;
  }
  if (engines.length) await stopEngines(engines);
  if (work) await rm(work, { recursive: true, force: true });
});

test('uploads the engine refuses before reading them are answered, and the hub keeps its memory', { timeout: 120_000 }, async () => {
  const start = await rssMiB(hub!.pid);
  for (let i = 0; i < 12; i++) {
    const chunked = i % 2 === 1;
    const status = await upload(3 * 1024 * 1024 + 12_345, chunked, 10_000);
    const now = await rssMiB(hub!.pid);
    assert.equal(status, 404, `upload ${i + 1} (${chunked ? 'chunked' : 'sized'}): ${status}; hub at ${now.toFixed(0)} MiB (started at ${start.toFixed(0)})`);
    assert.ok(now - start < 300, `hub memory after upload ${i + 1}: ${now.toFixed(0)} MiB, started at ${start.toFixed(0)} MiB`);
  }
  // The hub is still responsive for ordinary calls.
  const ping = await hubRequest(hubUrl, caPem, '/docker/nodes/early-0/_ping', { headers: { authorization: `Bearer ${token}` } });
  assert.equal(ping.status, 200, ping.text);
});
