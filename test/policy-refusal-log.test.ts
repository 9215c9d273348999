/** Every refusal by the host's policy is logged on that host, by the agent process itself:
 * method, path and reason, never the request body. */
import assert from 'node:assert/strict';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { request as httpsRequest } from 'node:https';
import { join } from 'node:path';
import { after, before, test } from 'node:test';
import { Writable } from 'node:stream';
import { pino } from 'pino';
import { NO_ENGINE } from './support/agent-fixture.ts';
import { mintCode, startTestHub, waitFor, nodeStatus, type TestHub } from './support/hub-fixture.ts';
import { spawnDockfleet, type DockfleetProcess } from './support/processes.ts';

let hub: TestHub;
let dir: string;
let agent: DockfleetProcess;
/** The hub's own log lines (it runs in this process). */
const hubLines: Array<Record<string, unknown>> = [];

before(async () => {
  const sink = new Writable({
    write(chunk: Buffer, _enc, done) {
      for (const l of chunk.toString().split('\n')) if (l) hubLines.push(JSON.parse(l));
      done();
    },
  });
  hub = await startTestHub({ log: pino({ level: 'info' }, sink) });
  dir = await mkdtemp(join(tmpdir(), 'dockfleet-refusal-log-'));
  const code = await mintCode(hub, 'logged');
  agent = spawnDockfleet(['agent', '--hub', hub.url, '--code', code, '--state', join(dir, 'state'), '--docker', NO_ENGINE, '--policy', join(dir, 'no-policy.json')]);
  await agent.waitForLine(/agent logged connected/);
  await waitFor(async () => (await nodeStatus(hub, 'logged')) === 'online', 10_000, 'node online');
});

after(async () => {
  await agent?.stop();
  await hub?.stop();
  await rm(dir, { recursive: true, force: true });
});

/** The agent's structured log lines (pino JSON on stderr). */
function logLines(): Array<Record<string, unknown>> {
  return agent
    .stderr()
    .split('\n')
    .filter((l) => l.startsWith('{'))
    .map((l) => JSON.parse(l) as Record<string, unknown>);
}

test('a refused container create is logged on the host with method, path and reason, without the body', async () => {
  const secret = 'S3CRET-VALUE-in-env';
  const res = await hub.api('POST', '/docker/nodes/logged/v1.43/containers/create?name=evil', { Image: 'busybox', Env: [`TOKEN=${secret}`], HostConfig: { Privileged: true } });
  assert.equal(res.status, 403);
  assert.match(String(res.json.message), /privileged containers/);
  const line = await waitFor(() => logLines().find((l) => /refused by (the )?(local|host) policy/.test(String(l.msg))), 5_000, 'the refusal in the agent log');
  assert.equal(line.method, 'POST');
  assert.equal(line.path, '/v1.43/containers/create');
  assert.match(String(line.reason), /privileged containers \(allow\.privileged is false/);
  assert.ok(!agent.stderr().includes(secret), 'the body never reaches the log');
});

test('a refused section and an unknown endpoint are logged too', async () => {
  const before = logLines().length;
  assert.equal((await hub.api('GET', '/docker/nodes/logged/v1.43/containers/x/export')).status, 403);
  assert.equal((await hub.api('GET', '/docker/nodes/logged/v1.43/nothing-here')).status, 403);
  const lines = await waitFor(
    () => {
      const fresh = logLines()
        .slice(before)
        .filter((l) => /refused/.test(String(l.msg)));
      return fresh.length >= 2 ? fresh : null;
    },
    5_000,
    'two more refusals in the agent log',
  );
  assert.match(String(lines[0]!.reason), /sections\.archive is not true/);
  assert.match(String(lines[1]!.reason), /not a Docker Engine API endpoint/);
});

test('a refused volume file browse and a refused hijacked call are logged too', async () => {
  const before = logLines().length;
  const browse = await hub.api('GET', '/api/v1/nodes/logged/volumes/data/files?path=%2F');
  assert.equal(browse.status, 403);
  // A hijacked call (Upgrade: tcp) into a section that is off: BuildKit sessions.
  const status = await new Promise<number>((resolve, reject) => {
    const req = httpsRequest(`${hub.url}/docker/nodes/logged/v1.43/session`, {
      method: 'POST',
      ca: hub.caPem,
      headers: { authorization: `Bearer ${hub.token}`, connection: 'Upgrade', upgrade: 'h2c', 'content-length': '0' },
    });
    req.once('response', (res) => {
      res.resume();
      resolve(res.statusCode ?? 0);
    });
    req.once('upgrade', (res, socket) => {
      socket.destroy();
      resolve(res.statusCode ?? 0);
    });
    req.once('error', reject);
    req.end();
  });
  assert.equal(status, 403);
  const lines = await waitFor(
    () => {
      const fresh = logLines()
        .slice(before)
        .filter((l) => /refused/.test(String(l.msg)));
      return fresh.length >= 2 ? fresh : null;
    },
    5_000,
    'two more refusals in the agent log',
  );
  assert.ok(
    lines.some((l) => /volumeFiles is not true/.test(String(l.reason)) && /\/volumes\/data\/files/.test(String(l.path))),
    JSON.stringify(lines),
  );
  assert.ok(
    lines.some((l) => /sections\.session is not true/.test(String(l.reason)) && l.path === '/v1.43/session'),
    JSON.stringify(lines),
  );
});

test('the hub logs a call that the host refused, with who, where and what, never the body', async () => {
  const secret = 'S3CRET-in-hub-log';
  const res = await hub.api('POST', '/docker/nodes/logged/v1.43/containers/create?name=evil2', { Image: 'busybox', Env: [`TOKEN=${secret}`], HostConfig: { Privileged: true } });
  assert.equal(res.status, 403);
  const line = await waitFor(() => hubLines.find((l) => l.msg === 'call refused by host policy' && l.path === '/v1.43/containers/create'), 5_000, 'the refusal in the hub log');
  assert.equal(line.node, 'logged');
  assert.equal(line.method, 'POST');
  assert.equal(typeof line.user, 'string');
  assert.ok(!JSON.stringify(hubLines).includes(secret), 'the body never reaches the hub log');
});
