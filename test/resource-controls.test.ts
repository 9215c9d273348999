/** Resource controls that can starve the host, and security options that unconfine: refused by
 * the host's default policy, each allowed by its own key, judged as the engine parses them;
 * then end to end through the hub against a real engine, as the docker CLI sees it. */
import assert from 'node:assert/strict';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, test } from 'node:test';
import { AgentPolicy } from '../src/agent/policy/policy.ts';
import { DEFAULT_POLICY, parsePolicy } from '../src/agent/policy/policy-file.ts';
import { BUSYBOX_IMAGE, startEngines, stopEngines, type TestEngine } from './support/engines.ts';
import { mintCode, startTestHub, type TestHub } from './support/hub-fixture.ts';
import { startTestAgent, type TestAgent } from './support/agent-fixture.ts';
import { spawnDockfleet } from './support/processes.ts';
import { DOCKER_BIN, parseExports, run } from './support/docker-cli.ts';

const FILE = '/etc/dockfleet/policy.json';
const GiB = 1024 ** 3;

const policyWith = (file: Record<string, unknown>): AgentPolicy => new AgentPolicy(parsePolicy(JSON.stringify(file), FILE));
const resources = (r: Record<string, unknown>): AgentPolicy => policyWith({ allow: { resources: r } });
const defaults = new AgentPolicy(DEFAULT_POLICY);

const hc = (hostConfig: Record<string, unknown>): Record<string, unknown> => ({ Image: 'busybox', HostConfig: hostConfig });
const create = (policy: AgentPolicy, body: unknown) => policy.check('POST', '/v1.41/containers/create', Buffer.from(JSON.stringify(body)));
const update = (policy: AgentPolicy, body: unknown) => policy.check('POST', '/v1.41/containers/web/update', Buffer.from(JSON.stringify(body)));

function refused(verdict: ReturnType<AgentPolicy['check']>, reason: RegExp): void {
  assert.equal(verdict.allowed, false, `expected a refusal matching ${reason}`);
  assert.ok(!verdict.allowed);
  assert.match(verdict.reason, /^dockfleet policy on this host refuses /);
  assert.match(verdict.reason, reason);
}

/** A container with moderate limits, what a careful compose file asks for. */
const MODERATE = hc({
  PidsLimit: 100,
  OomScoreAdj: 100,
  OomKillDisable: false,
  Memory: 256 * 1024 ** 2,
  CgroupParent: '',
  ShmSize: 64 * 1024 ** 2,
  Tmpfs: { '/run': 'rw,noexec,size=64m' },
  Mounts: [{ Type: 'tmpfs', Target: '/cache', TmpfsOptions: { SizeBytes: 32 * 1024 ** 2 } }],
  Ulimits: [{ Name: 'nofile', Soft: 1024, Hard: 4096 }],
  CpuRealtimePeriod: 0,
  CpuRealtimeRuntime: 0,
  CpuShares: 512,
  BlkioWeight: 300,
});

describe('security options that unconfine, in every spelling the engine accepts', () => {
  const unconfining = [
    'disable',
    ' disable',
    'DISABLE',
    'label=disable',
    'label:disable',
    'label=DISABLE',
    'Label = disable',
    'label=type:spc_t',
    'label:type:unconfined_t',
    'label=user:system_u',
    'label=role:system_r',
    'writable-cgroups',
    'writable-cgroups=true',
    'writable-cgroups=1',
    'writable-cgroups:TRUE',
    'apparmor=unconfined',
    'apparmor:unconfined',
    'seccomp=unconfined',
    'systempaths=unconfined',
  ];
  for (const opt of unconfining) {
    test(JSON.stringify(opt), () => {
      refused(create(defaults, hc({ SecurityOpt: ['no-new-privileges', opt] })), /security option .*which counts as privileged \(allow\.privileged is false/);
      assert.deepEqual(create(policyWith({ allow: { privileged: true } }), hc({ SecurityOpt: [opt] })), { allowed: true });
    });
  }
  test('options that keep the container confined pass', () => {
    const harmless = [
      'no-new-privileges',
      'no-new-privileges=true',
      'no-new-privileges:false',
      'label=level:s0:c100,c200',
      'label=filetype:container_file_t',
      'apparmor=docker-default',
      'seccomp=builtin',
      'writable-cgroups=false',
      'writable-cgroups=0',
    ];
    assert.deepEqual(create(defaults, hc({ SecurityOpt: harmless })), { allowed: true });
  });
});

describe('resource controls refused by default, each allowed by its key', () => {
  const cases: Array<[string, Record<string, unknown>, RegExp, Record<string, unknown>]> = [
    ['negative OomScoreAdj', { OomScoreAdj: -500 }, /negative HostConfig\.OomScoreAdj \(-500\).*allow\.resources\.negativeOomScoreAdj is false/, { negativeOomScoreAdj: true }],
    ['OomScoreAdj -1000', { OomScoreAdj: -1000 }, /negativeOomScoreAdj/, { negativeOomScoreAdj: true }],
    ['OomKillDisable', { OomKillDisable: true }, /HostConfig\.OomKillDisable.*allow\.resources\.oomKillDisable is false/, { oomKillDisable: true }],
    ['PidsLimit -1', { PidsLimit: -1 }, /unlimited HostConfig\.PidsLimit \(-1\).*allow\.resources\.unlimitedPids is false/, { unlimitedPids: true }],
    ['CgroupParent /', { CgroupParent: '/' }, /cgroup parent "\/".*allow\.resources\.cgroupParents is empty/, { cgroupParents: ['/'] }],
    ['CgroupParent /system.slice', { CgroupParent: '/system.slice' }, /cgroup parent/, { cgroupParents: ['/system.slice'] }],
    ['CgroupParent -.slice (systemd root)', { CgroupParent: '-.slice' }, /cgroup parent "-\.slice"/, { cgroupParents: ['-.slice'] }],
    ['CgroupParent relative (cgroupfs: beside the engine, not under it)', { CgroupParent: 'elsewhere' }, /cgroup parent "elsewhere"/, { cgroupParents: ['elsewhere'] }],
    ['Tmpfs without a size', { Tmpfs: { '/run': 'rw,noexec' } }, /tmpfs at "\/run" without a size.*allow\.resources\.maxTmpfsBytes is 1073741824 \(1 GiB\)/, { maxTmpfsBytes: null }],
    ['Tmpfs size=0 (no limit)', { Tmpfs: { '/run': 'size=0' } }, /without a size/, { maxTmpfsBytes: null }],
    ['Tmpfs of 8 GiB', { Tmpfs: { '/big': 'size=8g' } }, /tmpfs at "\/big" of 8 GiB/, { maxTmpfsBytes: 8 * GiB }],
    ['Tmpfs whose last size wins', { Tmpfs: { '/x': 'size=1m,size=4G' } }, /of 4 GiB/, { maxTmpfsBytes: 4 * GiB }],
    ['Tmpfs sized in pages', { Tmpfs: { '/x': 'nr_blocks=2m' } }, /of 8 GiB/, { maxTmpfsBytes: 8 * GiB }],
    ['Tmpfs of 100% of memory', { Tmpfs: { '/x': 'size=100%' } }, /tmpfs at "\/x" of/, { maxTmpfsBytes: null }],
    ['tmpfs mount without a size', { Mounts: [{ Type: 'tmpfs', Target: '/x' }] }, /tmpfs mount HostConfig\.Mounts\[0\] without a size/, { maxTmpfsBytes: null }],
    ['tmpfs mount of 2 GiB', { Mounts: [{ Type: 'tmpfs', Target: '/x', TmpfsOptions: { SizeBytes: 2 * GiB } }] }, /Mounts\[0\] of 2 GiB/, { maxTmpfsBytes: 2 * GiB }],
    ['ShmSize of 16 GiB', { ShmSize: 16 * GiB }, /\/dev\/shm of HostConfig\.ShmSize of 16 GiB/, { maxTmpfsBytes: 16 * GiB }],
    ['tmpfs adding up past the cap', { Tmpfs: { '/a': 'size=600m', '/b': 'size=600m' } }, /adding up to 1200 MiB/, { maxTmpfsBytes: 2 * GiB }],
    ['CpuRealtimeRuntime', { CpuRealtimeRuntime: 950000 }, /real-time CPU time, HostConfig\.CpuRealtimeRuntime.*allow\.resources\.realtimeCpu is false/, { realtimeCpu: true }],
    ['CpuRealtimeRuntime -1 (no limit)', { CpuRealtimeRuntime: -1 }, /realtimeCpu/, { realtimeCpu: true }],
    ['ulimit rtprio', { Ulimits: [{ Name: 'rtprio', Soft: 99, Hard: 99 }] }, /ulimit rtprio.*realtimeCpu is false/, { realtimeCpu: true }],
    ['unlimited nofile', { Ulimits: [{ Name: 'nofile', Soft: -1, Hard: -1 }] }, /unlimited ulimit "nofile".*allow\.resources\.unlimitedUlimits is false/, { unlimitedUlimits: true }],
    // biome-ignore lint/correctness/noPrecisionLoss: 2^64-1 as a JSON number is the point: it reads back as 2^64, still unlimited
    ['nproc as 2^64-1', { Ulimits: [{ Name: 'nproc', Soft: 1024, Hard: 18446744073709551615 }] }, /unlimited ulimit "nproc"/, { unlimitedUlimits: true }],
    ['memlock past the tmpfs cap', { Ulimits: [{ Name: 'memlock', Soft: 8 * GiB, Hard: 8 * GiB }] }, /memlock above 1 GiB/, { unlimitedUlimits: true }],
  ];
  for (const [name, hostConfig, reason, allowing] of cases) {
    test(name, () => {
      refused(create(defaults, hc(hostConfig)), reason);
      refused(create(defaults, { Image: 'busybox', ...hostConfig }), reason.source.includes('HostConfig') ? new RegExp(reason.source.replace(/HostConfig\\\./g, '')) : reason);
      assert.deepEqual(create(resources(allowing), hc(hostConfig)), { allowed: true });
    });
  }
  test('a cgroup parent under an allowed one passes; a sibling sharing its prefix does not', () => {
    const policy = resources({ cgroupParents: ['/dockfleet/'] });
    assert.deepEqual(create(policy, hc({ CgroupParent: '/dockfleet/team-a' })), { allowed: true });
    refused(create(policy, hc({ CgroupParent: '/dockfleetx' })), /allow\.resources\.cgroupParents is \/dockfleet in/);
    refused(create(policy, hc({ CgroupParent: '/dockfleet/../x' })), /cgroup parent/);
    refused(create(resources({ cgroupParents: ['/'] }), hc({ CgroupParent: '/docker/../..' })), /cgroup parent "\/docker\/\.\.\/\.\."/);
  });
  test('a container with moderate limits passes the default policy', () => {
    assert.deepEqual(create(defaults, MODERATE), { allowed: true });
  });
  test('what the docker CLI sends when no limit is named passes (PidsLimit 0, ShmSize 0, no ulimits)', () => {
    assert.deepEqual(create(defaults, hc({ PidsLimit: 0, ShmSize: 0, OomScoreAdj: 0, OomKillDisable: false, CgroupParent: '', Ulimits: [], CpuRealtimeRuntime: 0 })), { allowed: true });
  });
  test('fields of the wrong shape are refused as malformed', () => {
    refused(create(defaults, hc({ OomScoreAdj: '-500' })), /malformed HostConfig\.OomScoreAdj/);
    refused(create(defaults, hc({ Tmpfs: { '/x': 'size=lots' } })), /malformed HostConfig\.Tmpfs\["\/x"\] size/);
    refused(create(defaults, hc({ Ulimits: [{ Name: 'nofile', Soft: 'x' }] })), /malformed HostConfig\.Ulimits\[0\]/);
  });
});

describe('container update bodies', () => {
  test('lifting the pids limit (0 or -1), disabling the OOM killer or real-time CPU is refused', () => {
    refused(update(defaults, { PidsLimit: -1 }), /unlimited PidsLimit \(-1\) \(allow\.resources\.unlimitedPids is false in the default policy\)$/);
    refused(update(defaults, { PidsLimit: 0 }), /unlimited PidsLimit \(0\)/);
    refused(update(defaults, { OomKillDisable: true }), /oomKillDisable/);
    refused(update(defaults, { CpuRealtimeRuntime: 10000 }), /realtimeCpu/);
    assert.deepEqual(update(resources({ unlimitedPids: true }), { PidsLimit: -1 }), { allowed: true });
  });
  test('what docker update sends for ordinary changes passes', () => {
    assert.deepEqual(update(defaults, { Memory: 104857600, PidsLimit: null, OomKillDisable: null, CpuRealtimeRuntime: 0, RestartPolicy: { Name: '' } }), { allowed: true });
    assert.deepEqual(update(defaults, { PidsLimit: 200 }), { allowed: true });
    assert.equal(defaults.needsBody('POST', '/v1.41/containers/web/update'), true);
  });
});

describe('the policy file’s allow.resources', () => {
  test('defaults, and the startup line names what differs', () => {
    assert.deepEqual(DEFAULT_POLICY.allow.resources, {
      negativeOomScoreAdj: false,
      oomKillDisable: false,
      unlimitedPids: false,
      cgroupParents: [],
      maxTmpfsBytes: GiB,
      realtimeCpu: false,
      unlimitedUlimits: false,
    });
    assert.ok(Object.isFrozen(DEFAULT_POLICY.allow.resources));
    assert.doesNotMatch(defaults.summary(), /resources/);
    assert.match(resources({ oomKillDisable: true, maxTmpfsBytes: null, cgroupParents: ['/x/'] }).summary(), /resources\.oomKillDisable resources\.cgroupParents=\/x resources\.maxTmpfsBytes=null/);
  });
  for (const [name, allow, message] of [
    ['an unknown key', { resources: { oomKilDisable: true } }, /allow\.resources: .*"oomKilDisable"/],
    ['a cap that is not a byte count', { resources: { maxTmpfsBytes: '1g' } }, /allow\.resources\.maxTmpfsBytes/],
    ['a cgroup parent climbing out', { resources: { cgroupParents: ['/docker/..'] } }, /allow\.resources\.cgroupParents\[0\]/],
  ] as const) {
    test(`${name} stops the agent`, () => assert.throws(() => parsePolicy(JSON.stringify({ allow }), FILE), message));
  }
});

describe('end to end: through the hub against a real engine', () => {
  let engines: TestEngine[];
  let hub: TestHub;
  let work: string;
  const agents: TestAgent[] = [];
  const OPEN = {
    privileged: true,
    resources: { negativeOomScoreAdj: true, oomKillDisable: true, unlimitedPids: true, cgroupParents: ['/dockfleet-res'], maxTmpfsBytes: null, realtimeCpu: true, unlimitedUlimits: true },
  };

  before(async () => {
    engines = await startEngines(1, { prefix: 'res' });
    work = await mkdtemp(join(tmpdir(), 'dockfleet-res-'));
    hub = await startTestHub();
    const open = join(work, 'policy-open.json');
    await writeFile(open, JSON.stringify({ allow: OPEN }));
    // Two nodes on one engine: one with the default policy, one whose file allows every control.
    for (const [name, policy] of [
      ['res-default', undefined],
      ['res-open', open],
    ] as const) {
      const agent = await startTestAgent({ hubUrl: hub.url, code: await mintCode(hub, name), docker: engines[0]!.dockerHost, ...(policy ? { policy } : {}) });
      await agent.waitConnected();
      agents.push(agent);
    }
  });

  after(async () => {
    for (const agent of agents) await agent.stop();
    await hub?.stop();
    if (engines) await stopEngines(engines);
    if (work) await rm(work, { recursive: true, force: true });
  });

  const createOn = (node: string, hostConfig: Record<string, unknown>) =>
    hub.api('POST', `/docker/nodes/${node}/v1.41/containers/create`, { Image: BUSYBOX_IMAGE, Cmd: ['true'], HostConfig: hostConfig });

  const controls: Array<[string, Record<string, unknown>]> = [
    ['SecurityOpt disable', { SecurityOpt: ['disable'] }],
    ['negative OomScoreAdj', { OomScoreAdj: -900 }],
    ['OomKillDisable', { OomKillDisable: true, Memory: 64 * 1024 ** 2 }],
    ['PidsLimit -1', { PidsLimit: -1 }],
    ['CgroupParent', { CgroupParent: '/dockfleet-res' }],
    ['tmpfs without a size', { Tmpfs: { '/run': 'rw' } }],
    ['ShmSize 8 GiB', { ShmSize: 8 * GiB }],
    ['unlimited nofile', { Ulimits: [{ Name: 'nofile', Soft: -1, Hard: -1 }] }],
  ];
  for (const [name, hostConfig] of controls) {
    test(`${name}: refused on the default node with a 403 the CLI prints, created on the node that allows it`, async () => {
      const res = await createOn('res-default', hostConfig);
      assert.equal(res.status, 403, JSON.stringify(res.json));
      assert.match(JSON.stringify(res.json), /dockfleet policy on this host refuses /);
      const ok = await createOn('res-open', hostConfig);
      assert.equal(ok.status, 201, JSON.stringify(ok.json));
      assert.match(ok.json.Id, /^[0-9a-f]{64}$/);
    });
  }

  test('a container with moderate limits is created and runs under them', async () => {
    const res = await createOn('res-default', { PidsLimit: 100, OomScoreAdj: 100, Tmpfs: { '/run': 'size=64m' } });
    assert.equal(res.status, 201, JSON.stringify(res.json));
    const inspected = await hub.api('GET', `/docker/nodes/res-default/v1.41/containers/${res.json.Id}/json`);
    assert.equal(inspected.json.HostConfig.PidsLimit, 100);
    assert.equal(inspected.json.HostConfig.OomScoreAdj, 100);
  });

  test('docker update lifting a pids limit is refused; an ordinary update passes', async () => {
    const made = await createOn('res-default', { PidsLimit: 100 });
    assert.equal(made.status, 201, JSON.stringify(made.json));
    const lifted = await hub.api('POST', `/docker/nodes/res-default/v1.41/containers/${made.json.Id}/update`, { PidsLimit: -1 });
    assert.equal(lifted.status, 403, JSON.stringify(lifted.json));
    assert.match(JSON.stringify(lifted.json), /unlimitedPids/);
    const inspected = await hub.api('GET', `/docker/nodes/res-default/v1.41/containers/${made.json.Id}/json`);
    assert.equal(inspected.json.HostConfig.PidsLimit, 100);
    const fine = await hub.api('POST', `/docker/nodes/res-default/v1.41/containers/${made.json.Id}/update`, { PidsLimit: 200 });
    assert.equal(fine.status, 200, JSON.stringify(fine.json));
  });

  test('the stock docker CLI prints the refusal as the engine’s own error', async () => {
    const p = spawnDockfleet(['docker-env', 'res-default', '--data', hub.dataDir, '--dir', join(work, 'certs')]);
    assert.equal((await p.exited).code, 0, p.stderr());
    const env = { ...parseExports(p.stdout()), DOCKER_CLI_HINTS: 'false' };
    const res = await run(DOCKER_BIN, ['create', '--pids-limit', '-1', '--oom-score-adj', '-10', BUSYBOX_IMAGE, 'true'], env);
    assert.notEqual(res.code, 0);
    assert.match(
      res.stderr,
      /Error response from daemon: dockfleet policy on this host refuses an unlimited HostConfig\.PidsLimit \(-1\) \(allow\.resources\.unlimitedPids is false in the default policy/,
    );
    const plain = await run(DOCKER_BIN, ['create', '--pids-limit', '100', '--tmpfs', '/run:size=64m', BUSYBOX_IMAGE, 'true'], env);
    assert.equal(plain.code, 0, plain.stderr);
  });
});
