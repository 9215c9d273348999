/** The host policy judges the path the engine will actually mount, resolved on the host:
 * symlinks at every component, `/proc` magic links, `..` after a symlink, binds reached
 * through volumes and VolumesFrom, and a path swapped between create and start. Through the
 * hub, against a real engine. */
import assert from 'node:assert/strict';
import { mkdir, mkdtemp, rm, symlink, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, test } from 'node:test';
import { resolveHostPath } from '../src/agent/policy/resolve-host-path.ts';
import { BUSYBOX_IMAGE, containerLogs, engineRequest, startEngines, stopEngines, waitContainer, type TestEngine } from './support/engines.ts';
import { mintCode, startTestHub, type TestHub } from './support/hub-fixture.ts';
import { startTestAgent, type TestAgent } from './support/agent-fixture.ts';

let engine: TestEngine;
let hub: TestHub;
let work: string;
/** A host directory that a container writes to (it plants the symlink). */
let planted: string;
const agents: TestAgent[] = [];

type Answer = { status: number; json: any };

function docker(node: string, method: string, path: string, body?: unknown): Promise<Answer> {
  return hub.api(method, `/docker/nodes/${node}/v1.41${path}`, body);
}

function create(node: string, hostConfig: Record<string, unknown>, extra: Record<string, unknown> = {}): Promise<Answer> {
  return docker(node, 'POST', '/containers/create', { Image: BUSYBOX_IMAGE, Cmd: ['true'], ...extra, HostConfig: hostConfig });
}

function assertRefused(res: Answer, reason: RegExp): void {
  assert.equal(res.status, 403, `expected a refusal, got ${res.status}: ${JSON.stringify(res.json)}`);
  assert.match(String(res.json.message), /^dockfleet policy on this host refuses /);
  assert.match(String(res.json.message), reason);
}

before(async () => {
  engine = (await startEngines(1, { prefix: 'hostpaths' }))[0]!;
  work = await mkdtemp(join(tmpdir(), 'dockfleet-hostpaths-'));
  hub = await startTestHub();
  planted = join(work, 'planted');
  await mkdir(planted);
  const allowPlanted = join(work, 'allow-planted.json');
  await writeFile(allowPlanted, JSON.stringify({ allow: { bindMounts: [planted] } }));
  const allowNested = join(work, 'allow-nested.json');
  await writeFile(allowNested, JSON.stringify({ allow: { containerWritableBindSources: true } }));
  for (const [name, policy] of [
    ['hp-default', undefined],
    ['hp-listed', allowPlanted],
    ['hp-nested', allowNested],
  ] as const) {
    const agent = await startTestAgent({ hubUrl: hub.url, code: await mintCode(hub, name), docker: engine!.dockerHost, ...(policy ? { policy } : {}) });
    await agent.waitConnected();
    agents.push(agent);
  }
  // A container with a legitimate bind of a host temp dir plants a symlink to "/" in it.
  const planter = await create('hp-default', { Binds: [`${planted}:/t`] }, { Cmd: ['ln', '-s', '/', '/t/root'] });
  assert.equal(planter.status, 201, JSON.stringify(planter.json));
  assert.equal((await docker('hp-default', 'POST', `/containers/${planter.json.Id}/start`)).status, 204);
  assert.equal(await waitContainer(engine!, planter.json.Id), 0);
});

after(async () => {
  for (const a of agents) await a.stop();
  await hub?.stop();
  if (engine) await stopEngines([engine]);
  await rm(work, { recursive: true, force: true });
});

describe('symlinks and magic links', () => {
  test('a symlink to / planted by a container is refused with the default policy', async () => {
    assertRefused(await create('hp-default', { Binds: [`${planted}/root:/host`] }), /host root "\/".*resolves on this host/);
  });
  test('the same symlink is refused when allow.bindMounts lists the directory holding it', async () => {
    assertRefused(await create('hp-listed', { Binds: [`${planted}/root:/host`] }), /host root "\/"|outside the allowed host paths/);
    assertRefused(await create('hp-listed', { Binds: [`${planted}/root/etc:/host`] }), /"\/etc", outside the allowed host paths.*allow\.bindMounts is /);
  });
  test('a component below the symlink reaches the Docker socket parent and is refused', async () => {
    assertRefused(await create('hp-default', { Binds: [`${planted}/root/run:/r`] }), /Docker socket or a directory holding it, "\/run"/);
  });
  for (const magic of ['/proc/self/root', '/proc/1/root', '/proc/1/cwd', '/proc/thread-self/root', '/sys/fs/cgroup']) {
    test(`${magic} is refused (kernel filesystems cannot be judged by readlink)`, async () => {
      assertRefused(await create('hp-default', { Binds: [`${magic}:/host`] }), /\/proc or \/sys/);
    });
  }
  test('a symlink into /proc is refused', async () => {
    const link = join(work, 'to-proc');
    await symlink('/proc/self', link);
    assertRefused(await create('hp-default', { Binds: [`${link}/root:/host`] }), /\/proc or \/sys/);
  });
  test('`..` after a symlink climbs from where the symlink leads, not from its text', async () => {
    const dir = join(work, 'dotdot');
    await mkdir(dir);
    await symlink('/usr/bin', join(dir, 'bin'));
    // Lexically ${dir}/bin/../.. is ${work}; physically it is /usr/bin/../.. = "/".
    assertRefused(await create('hp-default', { Binds: [`${dir}/bin/../..:/host`] }), /host root "\/"/);
  });
  test('a symlink loop is refused, failing closed', async () => {
    const dir = join(work, 'loop');
    await mkdir(dir);
    await symlink(join(dir, 'b'), join(dir, 'a'));
    await symlink(join(dir, 'a'), join(dir, 'b'));
    assertRefused(await create('hp-default', { Binds: [`${dir}/a:/x`] }), /cannot be resolved|ELOOP|too many symbolic links/);
  });
  test('a Mounts entry of type bind is judged the same way', async () => {
    assertRefused(await create('hp-default', { Mounts: [{ Type: 'bind', Source: `${planted}/root`, Target: '/host' }] }), /host root "\/"/);
  });
  test('the deprecated top-level Binds field is judged too', async () => {
    const res = await docker('hp-default', 'POST', '/containers/create', { Image: BUSYBOX_IMAGE, Binds: [`${planted}/root:/host`] });
    assertRefused(res, /host root "\/"/);
  });
});

describe('volumes and VolumesFrom', () => {
  test('a local volume binding a symlink to / is refused at volume create', async () => {
    const res = await docker('hp-default', 'POST', '/volumes/create', { Name: 'via-link', DriverOpts: { type: 'none', o: 'bind', device: `${planted}/root` } });
    assertRefused(res, /host root "\/"/);
  });
  test('a volume mount whose DriverConfig binds a symlink to / is refused', async () => {
    const mount = { Type: 'volume', Source: 'inline-bind', Target: '/v', VolumeOptions: { DriverConfig: { Name: 'local', Options: { type: 'none', o: 'rbind', device: `${planted}/root` } } } };
    assertRefused(await create('hp-default', { Mounts: [mount] }), /host root "\/"/);
  });
  test('a bind volume made directly on the engine is refused when mounted through the hub', async () => {
    const made = await engineRequest(engine.socketPath, 'POST', '/volumes/create', { Name: 'made-on-host', DriverOpts: { type: 'none', o: 'bind', device: '/' } });
    assert.equal(made.status, 201, made.text);
    assertRefused(await create('hp-default', { Binds: ['made-on-host:/data'] }), /host root "\/".*volume "made-on-host"/);
    assertRefused(await create('hp-default', { Mounts: [{ Type: 'volume', Source: 'made-on-host', Target: '/data' }] }), /host root "\/"/);
    const viaLink = await engineRequest(engine.socketPath, 'POST', '/volumes/create', { Name: 'made-via-link', DriverOpts: { type: 'none', o: 'bind', device: `${planted}/root` } });
    assert.equal(viaLink.status, 201, viaLink.text);
    assertRefused(await create('hp-default', { Binds: ['made-via-link:/data:ro'] }), /host root "\/"/);
  });
  test('VolumesFrom a container made on the engine with a bind of / is refused', async () => {
    const made = await engineRequest(engine.socketPath, 'POST', '/containers/create?name=holds-root', { Image: BUSYBOX_IMAGE, Cmd: ['true'], HostConfig: { Binds: ['/:/host:ro'] } });
    assert.equal(made.status, 201, made.text);
    try {
      assertRefused(await create('hp-default', { VolumesFrom: ['holds-root'] }), /host root "\/".*holds-root/);
      assertRefused(await create('hp-default', { VolumesFrom: ['holds-root:ro'] }), /host root "\/"/);
    } finally {
      await engineRequest(engine.socketPath, 'DELETE', `/containers/${made.json.Id}?force=1`);
    }
  });
  test('a plain named volume still mounts', async () => {
    const res = await create('hp-default', { Binds: ['plain-volume:/data'] });
    assert.equal(res.status, 201, JSON.stringify(res.json));
    await engineRequest(engine.socketPath, 'DELETE', `/containers/${res.json.Id}?force=1`);
  });
});

describe('between create and start, and writable directories', () => {
  test('a path swapped for a symlink between create and start is refused at start and restart', async () => {
    const dir = await mkdtemp(join(tmpdir(), 'dockfleet-swap-'));
    try {
      await mkdir(join(dir, 'sub'));
      const created = await create('hp-default', { Binds: [`${dir}/sub:/x`] }, { Cmd: ['sleep', '60'] });
      assert.equal(created.status, 201, JSON.stringify(created.json));
      await rm(join(dir, 'sub'), { recursive: true });
      await symlink('/', join(dir, 'sub'));
      assertRefused(await docker('hp-default', 'POST', `/containers/${created.json.Id}/start`), /host root "\/"/);
      assertRefused(await docker('hp-default', 'POST', `/containers/${created.json.Id}/restart`), /host root "\/"/);
      const state = await engineRequest(engine.socketPath, 'GET', `/containers/${created.json.Id}/json`);
      assert.equal(state.json.State.Running, false);
      await engineRequest(engine.socketPath, 'DELETE', `/containers/${created.json.Id}?force=1`);
    } finally {
      await rm(dir, { recursive: true, force: true });
    }
  });
  test('a bind inside a directory a container can write is refused unless allowed', async () => {
    await mkdir(join(planted, 'inside'), { recursive: true });
    assertRefused(await create('hp-default', { Binds: [`${planted}/inside:/x`] }), /inside .*which container .* can write.*allow\.containerWritableBindSources is false/);
    const ok = await create('hp-nested', { Binds: [`${planted}/inside:/x`] });
    assert.equal(ok.status, 201, JSON.stringify(ok.json));
    await engineRequest(engine.socketPath, 'DELETE', `/containers/${ok.json.Id}?force=1`);
    // The very directory a container writes is fine: a container cannot replace its own mount root.
    const same = await create('hp-default', { Binds: [`${planted}:/again:ro`] });
    assert.equal(same.status, 201, JSON.stringify(same.json));
    await engineRequest(engine.socketPath, 'DELETE', `/containers/${same.json.Id}?force=1`);
  });
  test("a bind inside the engine's data root is refused", async () => {
    assertRefused(await create('hp-default', { Binds: [`${engine.dataRoot}/volumes:/v`] }), /engine's data/);
  });
  test('a bind of an ordinary temp dir works end to end', async () => {
    const dir = await mkdtemp(join(tmpdir(), 'dockfleet-legit-'));
    try {
      await writeFile(join(dir, 'hello.txt'), 'hello from the host\n');
      const created = await create('hp-default', { Binds: [`${dir}:/data:ro`] }, { Cmd: ['cat', '/data/hello.txt'] });
      assert.equal(created.status, 201, JSON.stringify(created.json));
      assert.equal((await docker('hp-default', 'POST', `/containers/${created.json.Id}/start`)).status, 204);
      assert.equal(await waitContainer(engine, created.json.Id), 0);
      assert.match(await containerLogs(engine, created.json.Id), /hello from the host/);
      await engineRequest(engine.socketPath, 'DELETE', `/containers/${created.json.Id}?force=1`);
    } finally {
      await rm(dir, { recursive: true, force: true });
    }
  });
});

test('a HostConfig sent with container start (engines apply it before API 1.24) is refused', async () => {
  const created = await create('hp-default', {}, { Cmd: ['sleep', '60'] });
  assert.equal(created.status, 201, JSON.stringify(created.json));
  try {
    const res = await hub.api('POST', `/docker/nodes/hp-default/v1.23/containers/${created.json.Id}/start`, { Binds: ['/:/host'], Privileged: true });
    assertRefused(res, /container start with a request body/);
    const state = await engineRequest(engine.socketPath, 'GET', `/containers/${created.json.Id}/json`);
    assert.equal(state.json.HostConfig.Privileged, false);
    assert.equal(state.json.State.Running, false);
    // A start without a body (what every client sends) still works.
    assert.equal((await docker('hp-default', 'POST', `/containers/${created.json.Id}/start`)).status, 204);
  } finally {
    await engineRequest(engine.socketPath, 'DELETE', `/containers/${created.json.Id}?force=1`);
  }
});

describe('resolveHostPath walks the host like the kernel, with mkdir -p for a missing tail', () => {
  test('relative and absolute symlinks, `..` after them, and a missing tail', async () => {
    const dir = join(work, 'walk');
    await mkdir(join(dir, 'real', 'deep'), { recursive: true });
    await symlink('real/deep', join(dir, 'rel'));
    await symlink(join(dir, 'real'), join(dir, 'abs'));
    await writeFile(join(dir, 'file'), 'x');
    assert.deepEqual(await resolveHostPath(`${dir}/rel`), { kind: 'path', path: `${dir}/real/deep` });
    assert.deepEqual(await resolveHostPath(`${dir}/rel/..`), { kind: 'path', path: `${dir}/real` });
    assert.deepEqual(await resolveHostPath(`${dir}//abs/./deep/`), { kind: 'path', path: `${dir}/real/deep` });
    assert.deepEqual(await resolveHostPath(`${dir}/rel/new/sub`), { kind: 'path', path: `${dir}/real/deep/new/sub` });
    // mkdir -p creates "new", so ".." comes back to where the walk was, and the walk goes on physically.
    assert.deepEqual(await resolveHostPath(`${dir}/rel/new/../../../abs`), { kind: 'path', path: `${dir}/real` });
    assert.equal((await resolveHostPath(`${dir}/file/x`)).kind, 'unresolvable');
    assert.equal((await resolveHostPath('relative/path')).kind, 'unresolvable');
    assert.deepEqual(await resolveHostPath('/proc/self/root/etc'), { kind: 'kernel', path: '/proc/self/root/etc' });
  });
});

test('allow.bindRoot still allows "/" itself (it holds the engine socket by definition)', async () => {
  const { judgeResolvedSource } = await import('../src/agent/policy/host-paths.ts');
  const { parsePolicy } = await import('../src/agent/policy/policy-file.ts');
  const { sayer } = await import('../src/agent/policy/refusal-text.ts');
  const facts = { engineSockets: ['/run/docker.sock'], engineRoot: '/var/lib/docker', writable: [] };
  const rootAllowed = parsePolicy('{"allow":{"bindRoot":true}}', 'p.json').allow;
  assert.equal(judgeResolvedSource('/x/link', { kind: 'path', path: '/' }, rootAllowed, sayer('p.json'), facts), null);
  const defaults = parsePolicy('{}', 'p.json').allow;
  assert.match(judgeResolvedSource('/x/link', { kind: 'path', path: '/' }, defaults, sayer('p.json'), facts) ?? '', /host root "\/", as "\/x\/link" resolves on this host/);
  assert.match(judgeResolvedSource('/x/lib', { kind: 'path', path: '/var/lib' }, rootAllowed, sayer('p.json'), facts) ?? '', /engine's data directory or a directory holding it/);
});
