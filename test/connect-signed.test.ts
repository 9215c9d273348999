/** `dockfleet connect` signs every call (issue 13): on a host whose policy requires signed intent
 * from the operator key kept on this machine, the stock docker CLI and docker-compose work
 * through `connect` — a container run and stopped, a 5 MiB `docker cp` (sealed frames) whose
 * content arrives whole, `exec -i` whose piped stdin (sealed frames, after the JSON body's own
 * seal) echoes back — while the same `docker stop` through `docker-env` (no signature), or
 * through `connect --unsigned`, is refused with a message naming `dockfleet connect`. */
import assert from 'node:assert/strict';
import { createHash, randomBytes } from 'node:crypto';
import { mkdir, mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, test } from 'node:test';
import { generateOperatorKey } from '../src/lib/intent-keys.ts';
import { operatorKeyFingerprint } from '../src/lib/operator-key-fingerprint.ts';
import { saveLocalKey } from '../src/cli/intent/operator-key-file.ts';
import { BUSYBOX_IMAGE, startEngines, stopEngines, type TestEngine } from './support/engines.ts';
import { mintCode, startTestHub, type TestHub } from './support/hub-fixture.ts';
import { startTestAgent, type TestAgent } from './support/agent-fixture.ts';
import { spawnDockfleet, type DockfleetProcess } from './support/processes.ts';
import { DOCKER_BIN, parseExports, run, type CliResult } from './support/docker-cli.ts';

let engine: TestEngine;
let hub: TestHub;
let agent: TestAgent;
let work: string;
let home: string;
let publicKey: string;
const connects: DockfleetProcess[] = [];

const socketEnv = (socket: string): NodeJS.ProcessEnv => ({ DOCKER_HOST: `unix://${socket}`, DOCKER_TLS_VERIFY: '', DOCKER_CERT_PATH: '', DOCKER_BUILDKIT: '0', DOCKER_CLI_HINTS: 'false' });
const signedSocket = (): string => join(work, 'signed.sock');

function docker(args: string[], env: NodeJS.ProcessEnv, opts: { input?: Buffer | string; cwd?: string } = {}): Promise<CliResult> {
  return run(DOCKER_BIN, args, env, { timeoutMs: 120_000, ...opts });
}

/** stdout only: the engine's own warnings reach stderr and depend on the host. */
async function ok(bin: string, args: string[], env: NodeJS.ProcessEnv, opts: { input?: Buffer | string; cwd?: string } = {}): Promise<string> {
  const res = await run(bin, args, env, { timeoutMs: 120_000, ...opts });
  assert.equal(res.code, 0, `${bin} ${args.join(' ')}: ${res.stderr}`);
  return res.stdout;
}

async function startConnect(socket: string, extra: string[] = []): Promise<DockfleetProcess> {
  const p = spawnDockfleet(['connect', 'vault', '--socket', socket, '--data', hub.dataDir, ...extra], { DOCKFLEET_HOME: home });
  connects.push(p);
  await p.waitForLine(/serving node vault on unix:\/\//);
  return p;
}

/** The host's own audit log, as entries. */
async function hostAudit(): Promise<Array<Record<string, unknown>>> {
  const text = await readFile(join(agent.stateDir, 'audit.log'), 'utf8').catch(() => '');
  return text
    .split('\n')
    .filter(Boolean)
    .flatMap((l) => {
      try {
        return [JSON.parse(l) as Record<string, unknown>];
      } catch {
        return [];
      }
    });
}

before(async () => {
  [engine] = (await startEngines(1, { prefix: 'sig' })) as [TestEngine];
  work = await mkdtemp(join(tmpdir(), 'dockfleet-signed-'));
  home = join(work, 'home');
  const key = generateOperatorKey();
  publicKey = key.publicKey;
  await saveLocalKey(operatorKeyFingerprint(publicKey), key.privateKeyPem, join(home, 'operator-keys'));
  const policy = join(work, 'policy.json');
  const sections = ['ping', 'version', 'info', 'events', 'system', 'containers', 'exec', 'images', 'volumes', 'networks', 'archive'];
  await writeFile(
    policy,
    JSON.stringify({
      sections: Object.fromEntries(sections.map((s) => [s, true])),
      signedIntent: { operators: [publicKey], require: 'mutations' },
    }),
  );
  hub = await startTestHub();
  agent = await startTestAgent({ hubUrl: hub.url, code: await mintCode(hub, 'vault'), docker: engine.dockerHost, policy });
  await agent.waitConnected();
});

after(async () => {
  for (const c of connects) await c.stop();
  await agent?.stop();
  await hub?.stop();
  if (engine) await stopEngines([engine]);
  await rm(work, { recursive: true, force: true });
});

test('connect signs with the local operator key: run, cp of 5 MiB, exec -i with stdin, stop', async () => {
  const connect = await startConnect(signedSocket());
  assert.match(connect.stdout(), new RegExp(`signing with ${publicKey}`));
  assert.equal(connect.stderr(), '', 'no warning when a key is there');
  const env = socketEnv(signedSocket());
  await ok(DOCKER_BIN, ['run', '-d', '--name', 'signed', BUSYBOX_IMAGE, 'sleep', '600'], env);

  // docker cp sends the tar chunked: connect seals it, the host unseals it on the way in.
  const file = join(work, 'big.bin');
  const bytes = randomBytes(5 * 1024 * 1024);
  await writeFile(file, bytes);
  await ok(DOCKER_BIN, ['cp', file, 'signed:/tmp/big.bin'], env);
  const inside = await ok(DOCKER_BIN, ['exec', 'signed', 'sha256sum', '/tmp/big.bin'], env);
  assert.equal(inside.split(/\s+/)[0], createHash('sha256').update(bytes).digest('hex'), 'the file arrived whole inside the container');

  // exec -i: the JSON body ends at its seal, the piped stdin follows in sealed frames.
  const text = `signed stdin ${randomBytes(8).toString('hex')}\n`.repeat(50);
  assert.equal(await ok(DOCKER_BIN, ['exec', '-i', 'signed', 'cat'], env, { input: text }), text);

  await ok(DOCKER_BIN, ['stop', '-t', '1', 'signed'], env);
  assert.match(await ok(DOCKER_BIN, ['ps', '-a', '--filter', 'name=signed', '--format', '{{.State}}'], env), /exited/);

  // The host's own log names the key for what it ran.
  const entries = await hostAudit();
  const stop = entries.find((e) => /\/containers\/[^/]+\/stop$/.test(String(e.op)) && e.result === 'ok');
  assert.ok(stop, `the stop is in the host's log: ${JSON.stringify(entries.slice(-5))}`);
  assert.equal(stop.key, publicKey);
  assert.ok(
    entries.some((e) => /archive/.test(String(e.op)) && e.result === 'ok' && e.key === publicKey),
    'the copy is in the host log, signed',
  );
});

test('docker-compose (v1) through connect brings a busybox service up and down on the signed host', async () => {
  const env = socketEnv(signedSocket());
  const project = join(work, 'project');
  await mkdir(project, { recursive: true });
  await writeFile(
    join(project, 'docker-compose.yml'),
    `version: "3"
services:
  box:
    image: ${BUSYBOX_IMAGE}
    command: sh -c "echo box up; sleep 600"
`,
  );
  await ok('docker-compose', ['-p', 'signedproj', 'up', '-d'], env, { cwd: project });
  assert.match(await ok(DOCKER_BIN, ['ps', '--format', '{{.Names}} {{.State}}'], env), /signedproj_box_1 running/);
  await ok('docker-compose', ['-p', 'signedproj', 'down'], env, { cwd: project });
  assert.doesNotMatch(await ok(DOCKER_BIN, ['ps', '-a', '--format', '{{.Names}}'], env), /signedproj_/);
});

test('unsigned calls are refused with a message naming dockfleet connect: docker-env, and connect --unsigned', async () => {
  const env = socketEnv(signedSocket());
  await ok(DOCKER_BIN, ['run', '-d', '--name', 'target', BUSYBOX_IMAGE, 'sleep', '600'], env);

  const exported = spawnDockfleet(['docker-env', 'vault', '--data', hub.dataDir, '--dir', join(work, 'certs')]);
  assert.equal((await exported.exited).code, 0, exported.stderr());
  const viaEnv = await docker(['stop', '-t', '1', 'target'], { ...parseExports(exported.stdout()), DOCKER_CLI_HINTS: 'false' });
  assert.notEqual(viaEnv.code, 0);
  assert.match(viaEnv.stderr, /this host requires signed intent: .*dockfleet connect vault --socket PATH/);
  // Reads need no signature on "mutations".
  assert.match((await docker(['ps', '--format', '{{.Names}}'], { ...parseExports(exported.stdout()) })).stdout, /target/);

  const unsignedSocket = join(work, 'unsigned.sock');
  const unsigned = await startConnect(unsignedSocket, ['--unsigned']);
  assert.match(unsigned.stderr(), /calls go unsigned; hosts that require signed intent will refuse changes/);
  const viaUnsigned = await docker(['stop', '-t', '1', 'target'], socketEnv(unsignedSocket));
  assert.notEqual(viaUnsigned.code, 0);
  assert.match(viaUnsigned.stderr, /requires signed intent.*dockfleet connect/);
  assert.match(await ok(DOCKER_BIN, ['ps', '--filter', 'name=target', '--format', '{{.State}}'], env), /running/, 'still running');

  const refusals = (await hostAudit()).filter((e) => e.result === 'refused' && /\/stop$/.test(String(e.op)));
  assert.ok(refusals.length >= 2, 'both refusals are in the host log');
  await ok(DOCKER_BIN, ['rm', '-f', 'target'], env);
});
