/** The stock docker CLI against real private engines through the hub: the exports that
 * `dockfleet docker-env` prints, then the commands people use every day, hijacked streams
 * (attach, exec, run -i, a TTY under tmux), file copies, image transfer, builds, policy
 * refusals, the fleet endpoint with a dead node, audit, and clean errors. */
import assert from 'node:assert/strict';
import { X509Certificate, createHash } from 'node:crypto';
import { mkdtemp, readFile, rm, writeFile, mkdir } from 'node:fs/promises';
import { Agent as HttpsAgent, request as httpsRequest } from 'node:https';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, test } from 'node:test';
import { BUSYBOX_IMAGE, runContainer, startEngines, stopEngines, type TestEngine } from './support/engines.ts';
import { mintCode, startTestHub, waitFor, type TestHub } from './support/hub-fixture.ts';
import { startTestAgent, type TestAgent } from './support/agent-fixture.ts';
import { spawnDockfleet } from './support/processes.ts';
import { DOCKER_BIN, parseExports, run, type CliResult } from './support/docker-cli.ts';

let engines: TestEngine[];
let hub: TestHub;
let work: string;
const agents: TestAgent[] = [];
let env: NodeJS.ProcessEnv;

async function dockfleet(...args: string[]): Promise<CliResult> {
  const p = spawnDockfleet(args);
  const { code } = await p.exited;
  return { code, stdout: p.stdout(), stderr: p.stderr(), stdoutBytes: Buffer.from(p.stdout()) };
}

async function docker(args: string[], opts: { input?: Buffer | string; env?: NodeJS.ProcessEnv; timeoutMs?: number; cwd?: string } = {}): Promise<CliResult> {
  return run(DOCKER_BIN, args, { ...env, DOCKER_BUILDKIT: '0', DOCKER_CLI_HINTS: 'false', ...opts.env }, opts);
}

async function ok(args: string[], opts: Parameters<typeof docker>[1] = {}): Promise<string> {
  const res = await docker(args, opts);
  assert.equal(res.code, 0, `docker ${args.join(' ')} failed: ${res.stderr}`);
  return res.stdout;
}

before(async () => {
  engines = await startEngines(2, { prefix: 'gw' });
  work = await mkdtemp(join(tmpdir(), 'dockfleet-gw-'));
  hub = await startTestHub();
  // Host 0 allows reading container filesystems and exporting images; host 1 keeps the defaults.
  const permissive = join(work, 'policy-open.json');
  const on = ['ping', 'version', 'info', 'events', 'system', 'containers', 'exec', 'images', 'build', 'volumes', 'networks', 'distribution', 'archive', 'imageExport'];
  await writeFile(permissive, JSON.stringify({ sections: Object.fromEntries(on.map((s) => [s, true])) }));
  for (const [i, engine] of engines.entries()) {
    const agent = await startTestAgent({
      hubUrl: hub.url,
      code: await mintCode(hub, `gw-${i}`),
      docker: engine.dockerHost,
      ...(i === 0 ? { policy: permissive } : {}),
    });
    await agent.waitConnected();
    agents.push(agent);
  }
  const exported = await dockfleet('docker-env', 'gw-0', '--data', hub.dataDir, '--dir', join(work, 'certs'));
  assert.equal(exported.code, 0, exported.stderr);
  env = parseExports(exported.stdout);
});

after(async () => {
  for (const a of agents) await a.stop();
  await hub.stop();
  await stopEngines(engines);
  await rm(work, { recursive: true, force: true });
});

test('docker-env prints the exports and a client certificate whose key never left this machine', async () => {
  assert.match(env.DOCKER_HOST!, /^tcp:\/\/127\.0\.0\.1:\d+\/docker\/nodes\/gw-0$/);
  assert.equal(env.DOCKER_TLS_VERIFY, '1');
  for (const f of ['ca.pem', 'cert.pem', 'key.pem']) await readFile(join(env.DOCKER_CERT_PATH!, f));
  const db = (await readFile(join(hub.dataDir, 'dockfleet.db'))).toString('latin1') + (await readFile(join(hub.dataDir, 'dockfleet.db-wal')).catch(() => '')).toString();
  const key = await readFile(join(env.DOCKER_CERT_PATH!, 'key.pem'), 'utf8');
  assert.ok(!db.includes(key.split('\n')[1]!), 'the private key is not in the hub database');
});

test('version, info, ps and inspect answer as the node’s own engine', async () => {
  const version = JSON.parse(await ok(['version', '--format', '{{json .Server}}']));
  assert.match(version.Version, /^\d+\.\d+/);
  const info = JSON.parse(await ok(['info', '--format', '{{json .}}']));
  assert.equal(info.DockerRootDir, engines[0]!.dataRoot);
  const id = await runContainer(engines[0]!, { name: 'seen-by-ps' });
  assert.match(await ok(['ps', '--format', '{{.Names}}']), /seen-by-ps/);
  const inspected = JSON.parse(await ok(['inspect', id]));
  assert.equal(inspected[0].Id, id);
});

test('run -d, run --rm with output, run -i with stdin, logs, rm', async () => {
  const id = (await ok(['run', '-d', '--name', 'bg', BUSYBOX_IMAGE, 'sh', '-c', 'echo started; sleep 600'])).trim();
  assert.match(id, /^[0-9a-f]{64}$/);
  await waitFor(async () => (await ok(['logs', 'bg'])).includes('started'), 5_000, 'log line');
  assert.equal(await ok(['run', '--rm', BUSYBOX_IMAGE, 'echo', 'hello from gw-0']), 'hello from gw-0\n');
  const piped = await ok(['run', '--rm', '-i', BUSYBOX_IMAGE, 'sh', '-c', 'wc -c; echo done'], { input: 'x'.repeat(100_000) });
  assert.equal(piped.replace(/\s+/g, ' ').trim(), '100000 done');
  const failing = await docker(['run', '--rm', BUSYBOX_IMAGE, 'sh', '-c', 'echo to-stderr >&2; exit 3']);
  assert.equal(failing.code, 3);
  assert.match(failing.stderr, /to-stderr/);
  await ok(['rm', '-f', 'bg']);
  assert.doesNotMatch(await ok(['ps', '-a', '--format', '{{.Names}}']), /^bg$/m);
});

test('exec with and without -i, and attach', async () => {
  await ok(['run', '-d', '--name', 'ex', BUSYBOX_IMAGE, 'sleep', '600']);
  assert.equal(await ok(['exec', 'ex', 'sh', '-c', 'echo $((6*7))']), '42\n');
  const sum = await ok(['exec', '-i', 'ex', 'sha256sum'], { input: Buffer.alloc(1 << 20, 7) });
  assert.equal(
    sum.split(' ')[0],
    createHash('sha256')
      .update(Buffer.alloc(1 << 20, 7))
      .digest('hex'),
  );
  const code = await docker(['exec', 'ex', 'sh', '-c', 'exit 5']);
  assert.equal(code.code, 5);
  await ok(['run', '-d', '--name', 'talker', BUSYBOX_IMAGE, 'sh', '-c', 'for i in 1 2 3 4 5 6 7 8 9 10; do echo tick $i; sleep 0.3; done']);
  const attached = await ok(['attach', 'talker'], { timeoutMs: 20_000 });
  assert.match(attached, /tick 10/);
});

test('exec -it under a real terminal (tmux), with the TTY size passed on', async () => {
  await ok(['run', '-d', '--name', 'tty', BUSYBOX_IMAGE, 'sleep', '600']);
  const session = `dockfleet-${process.pid}`;
  const envArgs = Object.entries(env).flatMap(([k, v]) => ['-e', `${k}=${v}`]);
  const tmux = (...args: string[]) => run('tmux', args, {});
  await tmux('new-session', '-d', '-s', session, '-x', '120', '-y', '40', ...envArgs, `${DOCKER_BIN} exec -it tty sh`);
  try {
    await waitFor(async () => (await tmux('capture-pane', '-p', '-t', session)).stdout.includes('#'), 10_000, 'a shell prompt');
    await tmux('send-keys', '-t', session, 'stty size; echo tty-$((40+2))', 'Enter');
    const screen = await waitFor(
      async () => {
        const s = (await tmux('capture-pane', '-p', '-t', session)).stdout;
        return s.includes('tty-42') ? s : null;
      },
      10_000,
      'the command output',
    );
    assert.match(screen, /40 120/);
    await tmux('send-keys', '-t', session, 'exit', 'Enter');
  } finally {
    await tmux('kill-session', '-t', session);
  }
});

test('logs -f and events stream live; stats answers', async () => {
  await ok(['run', '-d', '--name', 'chatty', BUSYBOX_IMAGE, 'sh', '-c', 'i=0; while true; do i=$((i+1)); echo line $i; sleep 0.2; done']);
  const follow = await docker(['logs', '-f', '--tail', '1', 'chatty'], { timeoutMs: 3_000 }).catch((e: Error) => e);
  assert.ok(follow instanceof Error, 'logs -f keeps the stream open');
  const since = Math.floor(Date.now() / 1000) - 60;
  const events = await ok(['events', '--since', String(since), '--until', String(Math.floor(Date.now() / 1000) + 1), '--filter', 'container=chatty', '--format', '{{.Action}}']);
  assert.match(events, /start/);
  const stats = JSON.parse(await ok(['stats', '--no-stream', '--format', '{{json .}}', 'chatty']));
  assert.equal(stats.Name, 'chatty');
  await ok(['rm', '-f', 'chatty']);
});

test('cp both ways and export, byte for byte', async () => {
  await ok(['run', '-d', '--name', 'files', BUSYBOX_IMAGE, 'sleep', '600']);
  const payload = Buffer.alloc(32 << 20);
  for (let i = 0; i < payload.length; i += 4096) payload.writeUInt32LE(i, i);
  await writeFile(join(work, 'big.bin'), payload);
  await ok(['cp', join(work, 'big.bin'), 'files:/tmp/big.bin']);
  const inside = await ok(['exec', 'files', 'sha256sum', '/tmp/big.bin']);
  const digest = createHash('sha256').update(payload).digest('hex');
  assert.equal(inside.split(' ')[0], digest);
  await mkdir(join(work, 'out'), { recursive: true });
  await ok(['cp', 'files:/tmp/big.bin', join(work, 'out', 'back.bin')]);
  assert.equal(
    createHash('sha256')
      .update(await readFile(join(work, 'out', 'back.bin')))
      .digest('hex'),
    digest,
  );
  const tar = await docker(['export', 'files'], { timeoutMs: 60_000 });
  assert.equal(tar.code, 0, tar.stderr);
  assert.ok(tar.stdoutBytes.length > payload.length);
  assert.ok(tar.stdoutBytes.includes(Buffer.from('tmp/big.bin')));
});

test('save, load, import and build with a context', async () => {
  const saved = join(work, 'busybox.tar');
  await ok(['save', '-o', saved, BUSYBOX_IMAGE]);
  await ok(['tag', BUSYBOX_IMAGE, 'copied/busybox:1']);
  await ok(['rmi', 'copied/busybox:1']);
  assert.match(await ok(['load', '-i', saved]), /Loaded image/);
  const rootfs = await docker(['export', 'files']);
  assert.match(await ok(['import', '-', 'imported/rootfs:1'], { input: rootfs.stdoutBytes }), /^sha256:/);
  assert.match(await ok(['run', '--rm', 'imported/rootfs:1', 'ls', '/tmp/big.bin']), /big\.bin/);
  const ctx = join(work, 'ctx');
  await mkdir(ctx, { recursive: true });
  await writeFile(join(ctx, 'Dockerfile'), `FROM ${BUSYBOX_IMAGE}\nCOPY greeting.txt /greeting.txt\nRUN echo built >> /greeting.txt\n`);
  await writeFile(join(ctx, 'greeting.txt'), 'hello context\n');
  await ok(['build', '-t', 'built/hello:1', ctx], { timeoutMs: 120_000 });
  assert.equal(await ok(['run', '--rm', 'built/hello:1', 'cat', '/greeting.txt']), 'hello context\nbuilt\n');
});

test('networks, volumes and prune', async () => {
  await ok(['network', 'create', 'gw-net']);
  assert.match(await ok(['network', 'ls', '--format', '{{.Name}}']), /gw-net/);
  await ok(['volume', 'create', 'gw-vol']);
  await ok(['run', '--rm', '-v', 'gw-vol:/data', '--network', 'gw-net', BUSYBOX_IMAGE, 'sh', '-c', 'echo kept > /data/f']);
  assert.equal(await ok(['run', '--rm', '-v', 'gw-vol:/data', BUSYBOX_IMAGE, 'cat', '/data/f']), 'kept\n');
  await ok(['network', 'rm', 'gw-net']);
  await ok(['volume', 'rm', 'gw-vol']);
  await ok(['run', '--name', 'done-1', BUSYBOX_IMAGE, 'true']);
  assert.match(await ok(['container', 'prune', '-f']), /Total reclaimed space/);
  assert.doesNotMatch(await ok(['ps', '-a', '--format', '{{.Names}}']), /done-1/);
});

test('the host policy refuses dangerous calls with a clear message, and logs them', async () => {
  const cases: Array<[string[], RegExp]> = [
    [['run', '--rm', '--privileged', BUSYBOX_IMAGE, 'true'], /privileged/i],
    [['run', '--rm', '-v', '/:/host', BUSYBOX_IMAGE, 'true'], /bind|\//i],
    [['run', '--rm', '-v', '/var/run/docker.sock:/s', BUSYBOX_IMAGE, 'true'], /docker\.sock|socket/i],
    [['run', '--rm', '--pid', 'host', BUSYBOX_IMAGE, 'true'], /host/i],
    [['run', '--rm', '--cap-add', 'SYS_ADMIN', BUSYBOX_IMAGE, 'true'], /SYS_ADMIN|capabilit/i],
    [['run', '--rm', '--device', '/dev/null:/dev/x', BUSYBOX_IMAGE, 'true'], /device/i],
    [['plugin', 'install', '--grant-all-permissions', 'vieux/sshfs'], /plugin/i],
  ];
  for (const [args, pattern] of cases) {
    const res = await docker(args);
    assert.notEqual(res.code, 0, `docker ${args.join(' ')} should be refused`);
    assert.match(res.stderr, /dockfleet policy/, res.stderr);
    assert.match(res.stderr, pattern, res.stderr);
  }
  // Host 1 keeps the default policy: reading a container's filesystem is off there.
  const env1 = parseExports((await dockfleet('docker-env', 'gw-1', '--data', hub.dataDir, '--dir', join(work, 'certs'))).stdout);
  await docker(['run', '-d', '--name', 'sealed', BUSYBOX_IMAGE, 'sleep', '600'], { env: env1 });
  const cp = await docker(['cp', 'sealed:/etc/passwd', join(work, 'nope')], { env: env1 });
  assert.notEqual(cp.code, 0);
  assert.match(cp.stderr, /dockfleet policy/);
  const exp = await docker(['export', 'sealed'], { env: env1 });
  assert.notEqual(exp.code, 0);
});

test('the fleet endpoint merges every node’s lists, labelled, and names a dead node instead of waiting', async () => {
  const fleetEnv = { ...env, DOCKER_HOST: env.DOCKER_HOST!.replace(/nodes\/gw-0$/, 'fleet') };
  const rows = (await ok(['ps', '-a', '--format', '{{.Names}} {{.Label "dockfleet.node"}}'], { env: fleetEnv })).trim().split('\n');
  assert.ok(rows.some((r) => r.endsWith(' gw-0')) && rows.some((r) => r.endsWith(' gw-1')), rows.join('\n'));
  const images = await hub.api('GET', '/docker/fleet/images/json');
  assert.equal(images.status, 200);
  assert.deepEqual([...new Set(images.json.map((i: { Labels: Record<string, string> }) => i.Labels['dockfleet.node']))].sort(), ['gw-0', 'gw-1']);
  const volumes = await hub.api('GET', '/docker/fleet/v1.41/volumes');
  assert.ok(Array.isArray(volumes.json.Volumes));
  // Host 1's engine stops answering: its agent stays up but the engine is gone.
  await engines[1]!.kill({ signal: 'SIGKILL' });
  const started = Date.now();
  const partial = await fetchWithHeaders(`${hub.url}/docker/fleet/containers/json?all=1`);
  assert.ok(Date.now() - started < 4_000, 'answered within the per-node deadline');
  assert.equal(partial.headers.get('x-dockfleet-missing-nodes'), 'gw-1');
  assert.ok((partial.json as Array<{ Labels: Record<string, string> }>).every((c) => c.Labels['dockfleet.node'] === 'gw-0'));
  await engines[1]!.start();
});

async function fetchWithHeaders(url: string): Promise<{ headers: Headers; json: unknown }> {
  const { request } = await import('node:https');
  return new Promise((resolve, reject) => {
    const req = request(url, { ca: hub.caPem, headers: { authorization: `Bearer ${hub.token}` } }, (res) => {
      let body = '';
      res.on('data', (c) => (body += c));
      res.on('end', () => resolve({ headers: new Headers(res.headers as Record<string, string>), json: JSON.parse(body) }));
    });
    req.on('error', reject);
    req.end();
  });
}

/** GET /docker/nodes/gw-0/_ping with the admin token over `sockets` kept-alive connections. */
function hubPinger(sockets: number): { agent: HttpsAgent; ping: () => Promise<number> } {
  const agent = new HttpsAgent({ keepAlive: true, maxSockets: sockets, ca: hub.caPem });
  const ping = (): Promise<number> =>
    new Promise((resolve, reject) => {
      const req = httpsRequest(`${hub.url}/docker/nodes/gw-0/_ping`, { agent, headers: { authorization: `Bearer ${hub.token}` } }, (res) => {
        res.resume();
        res.on('end', () => resolve(res.statusCode ?? 0));
      });
      req.on('error', reject);
      req.end();
    });
  return { agent, ping };
}

test('one agent link carries thousands of quick calls without a hiccup', async () => {
  // Each quick call once left a stray RST_STREAM behind; after ~1,700 of them Node's limit on
  // invalid frames ended the whole channel.
  const { agent, ping } = hubPinger(4);
  try {
    const statuses = new Map<number, number>();
    for (let i = 0; i < 3_000; i += 4) {
      for (const status of await Promise.all([ping(), ping(), ping(), ping()])) statuses.set(status, (statuses.get(status) ?? 0) + 1);
    }
    assert.deepEqual([...statuses], [[200, 3_000]]);
  } finally {
    agent.destroy();
  }
});

test('an export yields to quick calls on the same node, arrives whole, and leaves nothing counted', async () => {
  await ok(['run', '-d', '--name', 'bulkq', BUSYBOX_IMAGE, 'sleep', '600']);
  await ok(['exec', 'bulkq', 'dd', 'if=/dev/urandom', 'of=/big', 'bs=1M', 'count=128']);
  const link = hub.hub.registry.link(hub.hub.registry.require('gw-0').id)!;
  const yieldsBefore = link.qos.yields;
  const { agent, ping } = hubPinger(1);
  try {
    let exporting = true;
    const through = docker(['export', 'bulkq'], { timeoutMs: 120_000 }).finally(() => (exporting = false));
    const statuses: number[] = [];
    while (exporting) statuses.push(await ping());
    const tar = await through;
    assert.equal(tar.code, 0, tar.stderr);
    assert.ok(statuses.length > 0 && statuses.every((s) => s === 200), `pings during the export: ${statuses.join(',')}`);
    const direct = await docker(['export', 'bulkq'], { timeoutMs: 120_000, env: { DOCKER_HOST: engines[0]!.dockerHost, DOCKER_TLS_VERIFY: '', DOCKER_CERT_PATH: '' } });
    assert.equal(direct.code, 0, direct.stderr);
    const sha = (b: Buffer): string => createHash('sha256').update(b).digest('hex');
    assert.equal(tar.stdoutBytes.length, direct.stdoutBytes.length);
    assert.equal(sha(tar.stdoutBytes), sha(direct.stdoutBytes), "the export that yielded is byte for byte the engine's");
    assert.ok(link.qos.yields > yieldsBefore, 'the export yielded to the pings');
    assert.equal(link.qos.interactive, 0, 'every call that began has ended');
    assert.equal(link.qos.closed(), false);
  } finally {
    agent.destroy();
    await docker(['rm', '-f', 'bulkq']);
  }
});

test('every mutating call is in the audit log with user, node, method, path and status', async () => {
  const res = await hub.api('GET', '/api/v1/audit?node=gw-0&limit=1000');
  assert.equal(res.status, 200);
  const entries = res.json as Array<{ user: string; node: string; method: string; path: string; status: number; time: string }>;
  const created = entries.find((e) => e.method === 'POST' && /\/containers\/create/.test(e.path));
  assert.ok(created, 'container create audited');
  assert.equal(created.user, 'admin.token', 'the admin token is its own principal');
  assert.ok(
    entries.some((e) => /\/exec\/[0-9a-f]+\/start/.test(e.path) && e.status === 101),
    'exec start audited as a hijack',
  );
  assert.ok(
    entries.some((e) => e.status === 403),
    'policy refusals audited',
  );
  assert.ok(!entries.some((e) => e.method === 'GET'), 'reads are not audited');
});

test('clear failures: unknown node, offline node, revoked certificate, viewer writing', async () => {
  const unknown = await docker(['ps'], { env: { DOCKER_HOST: env.DOCKER_HOST!.replace(/gw-0$/, 'nope') } });
  assert.notEqual(unknown.code, 0);
  assert.match(unknown.stderr, /no node named nope/);
  await agents[1]!.stop();
  const env1 = { DOCKER_HOST: env.DOCKER_HOST!.replace(/gw-0$/, 'gw-1') };
  const offline = await docker(['ps'], { env: env1 });
  assert.notEqual(offline.code, 0);
  assert.match(offline.stderr, /gw-1 is offline/);
  // A viewer may read but not change anything.
  const viewer = await hub.api('POST', '/api/v1/users', { name: 'val', role: 'viewer' });
  const viewerEnv = { DOCKER_HOST: env.DOCKER_HOST!, DOCKER_TLS_VERIFY: '1', DOCKER_CERT_PATH: join(work, 'viewer-certs') };
  const ve = await dockfleet('docker-env', 'gw-0', '--hub', hub.url, '--token', viewer.json.token, '--ca', join(hub.dataDir, 'pki', 'ca.pem'), '--dir', viewerEnv.DOCKER_CERT_PATH);
  assert.equal(ve.code, 0, ve.stderr);
  assert.equal((await docker(['ps'], { env: viewerEnv })).code, 0);
  const write = await docker(['run', '--rm', BUSYBOX_IMAGE, 'true'], { env: viewerEnv });
  assert.notEqual(write.code, 0);
  assert.match(write.stderr, /viewer/);
  // Revoking the certificate: the next call is refused.
  const serial = new X509Certificate(await readFile(join(viewerEnv.DOCKER_CERT_PATH, 'cert.pem'))).serialNumber.toLowerCase();
  assert.equal((await hub.api('DELETE', `/api/v1/client-certs/${serial}`)).status, 200);
  const revoked = await docker(['ps'], { env: viewerEnv });
  assert.notEqual(revoked.code, 0);
  assert.match(revoked.stderr, /revoked/);
});

test('an engine that dies mid-stream ends the client’s stream; hub and agent stay up', async () => {
  // Host 0's engine goes away while `docker events` is streaming from it.
  const { spawn } = await import('node:child_process');
  const child = spawn(DOCKER_BIN, ['events'], { env: { ...process.env, ...env }, stdio: 'ignore' });
  const exited = new Promise<number | null>((resolve) => child.once('exit', (code) => resolve(code)));
  await new Promise((r) => setTimeout(r, 1_000));
  assert.equal(child.exitCode, null, 'events is streaming');
  await engines[0]!.kill({ signal: 'SIGKILL' });
  const killedAt = Date.now();
  const code = await Promise.race([exited, new Promise<'hang'>((r) => setTimeout(() => r('hang'), 10_000))]);
  assert.notEqual(code, 'hang', 'the docker CLI was left hanging');
  assert.ok(Date.now() - killedAt < 10_000);
  // The node itself stays online and reports its engine down; the next call fails clearly.
  assert.equal((await hub.api('GET', '/healthz')).status, 200);
  const node = await waitFor(
    async () => {
      const n = (await hub.api('GET', '/api/v1/nodes/gw-0')).json;
      return n.engine.state === 'down' ? n : null;
    },
    10_000,
    'engine down reported',
  );
  assert.equal(node.status, 'online');
  const ps = await docker(['ps']);
  assert.notEqual(ps.code, 0);
  assert.match(ps.stderr, /could not reach the Docker engine/);
  await engines[0]!.start();
});
