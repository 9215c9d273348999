/** `dockfleet connect NAME --socket PATH`: tools that only speak a unix socket — the docker
 * CLI with DOCKER_HOST=unix://…, Debian's docker-compose v1 — work through the hub unchanged.
 * A log follow left idle for longer than any server timeout keeps streaming. */
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, test } from 'node:test';
import { BUSYBOX_IMAGE, startEngines, stopEngines, type TestEngine } from './support/engines.ts';
import { mintCode, startTestHub, waitFor, type TestHub } from './support/hub-fixture.ts';
import { startTestAgent, type TestAgent } from './support/agent-fixture.ts';
import { spawnDockfleet, type DockfleetProcess } from './support/processes.ts';
import { DOCKER_BIN, run } from './support/docker-cli.ts';

const IDLE_MS = Number(process.env.DOCKFLEET_IDLE_TEST_MS ?? 70_000);

let engine: TestEngine;
let hub: TestHub;
let agent: TestAgent;
let connect: DockfleetProcess;
let work: string;
let socket: string;
let follower: { output: () => string; stop: () => void };
let followStarted: number;

const env = (): NodeJS.ProcessEnv => ({ DOCKER_HOST: `unix://${socket}`, DOCKER_TLS_VERIFY: '', DOCKER_CERT_PATH: '', DOCKER_BUILDKIT: '0' });

/** stdout only: the engine's own warnings (e.g. "IPv4 forwarding is disabled" on a host where
 * net.ipv4.ip_forward=0, as on a fresh machine) reach the CLI's stderr and depend on the host. */
async function ok(bin: string, args: string[], cwd?: string): Promise<string> {
  const res = await run(bin, args, env(), { timeoutMs: 120_000, ...(cwd ? { cwd } : {}) });
  assert.equal(res.code, 0, `${bin} ${args.join(' ')}: ${res.stderr}`);
  return res.stdout;
}

before(async () => {
  [engine] = (await startEngines(1, { prefix: 'conn' })) as [TestEngine];
  work = await mkdtemp(join(tmpdir(), 'dockfleet-conn-'));
  socket = join(work, 'docker.sock');
  hub = await startTestHub();
  agent = await startTestAgent({ hubUrl: hub.url, code: await mintCode(hub, 'shop'), docker: engine.dockerHost });
  await agent.waitConnected();
  connect = spawnDockfleet(['connect', 'shop', '--socket', socket, '--data', hub.dataDir]);
  await connect.waitForLine(/serving node shop on unix:\/\//);
});

after(async () => {
  follower?.stop();
  await connect.stop();
  await agent.stop();
  await hub.stop();
  await stopEngines([engine]);
  await rm(work, { recursive: true, force: true });
});

test('the docker CLI works over the local socket, hijacked calls included', async () => {
  assert.match(await ok(DOCKER_BIN, ['version', '--format', '{{.Server.Version}}']), /^\d+\./);
  await ok(DOCKER_BIN, ['run', '-d', '--name', 'quiet', BUSYBOX_IMAGE, 'sh', '-c', `echo first; sleep ${Math.ceil(IDLE_MS / 1000) + 5}; echo after-idle; sleep 600`]);
  // Start following now; the next line comes only after the idle period.
  const child = spawn(DOCKER_BIN, ['logs', '-f', 'quiet'], { env: { ...process.env, ...env() } });
  let out = '';
  child.stdout.on('data', (c: Buffer) => (out += c.toString()));
  follower = { output: () => out, stop: () => void child.kill('SIGKILL') };
  followStarted = Date.now();
  await waitFor(() => out.includes('first'), 5_000, 'the first log line');
  assert.equal(await ok(DOCKER_BIN, ['run', '--rm', BUSYBOX_IMAGE, 'echo', 'via-socket']), 'via-socket\n');
  const stdin = await run(DOCKER_BIN, ['run', '--rm', '-i', BUSYBOX_IMAGE, 'wc', '-c'], env(), { input: 'abcdef' });
  assert.equal(stdin.stdout.trim(), '6');
  assert.equal(await ok(DOCKER_BIN, ['exec', 'quiet', 'echo', 'exec-ok']), 'exec-ok\n');
});

test('docker-compose (v1) brings a two-service project up, lists it, shows logs, takes it down', async () => {
  const project = join(work, 'project');
  await run('mkdir', ['-p', project], {});
  await writeFile(
    join(project, 'docker-compose.yml'),
    `version: "3"
services:
  web:
    image: ${BUSYBOX_IMAGE}
    command: sh -c "echo web up; mkdir -p /www && echo hi > /www/index.html && httpd -f -p 8080 -h /www"
  worker:
    image: ${BUSYBOX_IMAGE}
    command: sh -c "echo worker up; while true; do wget -q -O - http://web:8080/ && sleep 1; done"
    depends_on: [web]
    volumes: [data:/data]
volumes:
  data: {}
`,
  );
  await ok('docker-compose', ['-p', 'shop', 'up', '-d'], project);
  const ps = await ok('docker-compose', ['-p', 'shop', 'ps'], project);
  assert.match(ps, /shop_web_1\s.*Up/);
  assert.match(ps, /shop_worker_1\s.*Up/);
  // The worker reaches the web service by name on the project's network: both really run.
  await waitFor(async () => (await ok('docker-compose', ['-p', 'shop', 'logs', 'worker'], project)).includes('hi'), 15_000, 'worker fetching from web');
  assert.match(await ok('docker-compose', ['-p', 'shop', 'logs', 'web'], project), /web up/);
  await ok('docker-compose', ['-p', 'shop', 'down', '-v'], project);
  assert.doesNotMatch(await ok(DOCKER_BIN, ['ps', '-a', '--format', '{{.Names}}']), /shop_/);
  // And the hub saw all of it in its audit log.
  const audit = await hub.api('GET', '/api/v1/audit?node=shop&limit=1000');
  assert.ok(audit.json.some((e: { path: string }) => /\/networks\/create/.test(e.path)));
});

test(`a log follow idle for ${Math.round(IDLE_MS / 1000)} s keeps streaming`, async () => {
  const wait = followStarted + IDLE_MS + 8_000 - Date.now();
  await waitFor(() => follower.output().includes('after-idle'), Math.max(wait, 10_000), 'the line after the idle period', 250);
  assert.ok(Date.now() - followStarted >= IDLE_MS, 'the stream really sat idle');
});
