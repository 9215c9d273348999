/** The agent's local policy: request classification (including path tricks), body checks for
 * container/exec/volume create, plugin install gating, and the policy file itself. */
import assert from 'node:assert/strict';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, test } from 'node:test';
import { API_ROUTES } from '../src/agent/policy/api-routes.ts';
import { classify } from '../src/agent/policy/classify-request.ts';
import { AgentPolicy, MAX_INSPECTED_BODY } from '../src/agent/policy/policy.ts';
import { DEFAULT_POLICY, loadPolicy, parsePolicy, SECTION_NAMES, type SectionName } from '../src/agent/policy/policy-file.ts';
import { parseStrictJson } from '../src/agent/policy/strict-json.ts';

const FILE = '/etc/dockfleet/policy.json';

function policyWith(file: Record<string, unknown>): AgentPolicy {
  return new AgentPolicy(parsePolicy(JSON.stringify(file), FILE));
}

const defaults = new AgentPolicy(DEFAULT_POLICY);
const restricted = policyWith({ allow: { bindMounts: ['/srv', '/data/'] } });
const everything = Object.fromEntries(SECTION_NAMES.map((name) => [name, true])) as Record<SectionName, boolean>;

describe('classification of real CLI requests', () => {
  const cases: Array<[string, string, SectionName, string]> = [
    ['GET', '/_ping', 'ping', 'SystemPing'],
    ['HEAD', '/_ping', 'ping', 'SystemPing'],
    ['GET', '/v1.41/version', 'version', 'SystemVersion'],
    ['GET', '/v1.43/info', 'info', 'SystemInfo'],
    ['GET', '/v1.41/events?filters=%7B%22type%22%3A%5B%22container%22%5D%7D', 'events', 'SystemEvents'],
    ['GET', '/v1.41/system/df', 'system', 'SystemDataUsage'],
    ['POST', '/v1.41/auth', 'auth', 'SystemAuth'],
    ['GET', '/v1.41/containers/json?all=1&size=0', 'containers', 'ContainerList'],
    ['POST', '/v1.41/containers/create?name=web&platform=linux%2Famd64', 'containers', 'ContainerCreate'],
    ['POST', '/v1.41/containers/3f4a9c/start', 'containers', 'ContainerStart'],
    ['POST', '/v1.41/containers/web/stop?t=10', 'containers', 'ContainerStop'],
    ['POST', '/v1.41/containers/web/kill?signal=SIGKILL', 'containers', 'ContainerKill'],
    ['POST', '/v1.41/containers/web/wait?condition=next-exit', 'containers', 'ContainerWait'],
    ['POST', '/v1.41/containers/web/attach?stream=1&stdin=1&stdout=1&stderr=1', 'containers', 'ContainerAttach'],
    ['GET', '/v1.41/containers/web/attach/ws?stream=1', 'containers', 'ContainerAttachWebsocket'],
    ['GET', '/v1.41/containers/web/logs?follow=1&stdout=1&tail=all', 'containers', 'ContainerLogs'],
    ['GET', '/v1.41/containers/web/json', 'containers', 'ContainerInspect'],
    ['GET', '/v1.41/containers/web/stats?stream=0', 'containers', 'ContainerStats'],
    ['POST', '/v1.41/containers/web/resize?h=40&w=120', 'containers', 'ContainerResize'],
    ['POST', '/v1.41/containers/web/update', 'containers', 'ContainerUpdate'],
    ['DELETE', '/v1.41/containers/web?force=1&v=1', 'containers', 'ContainerDelete'],
    ['POST', '/v1.41/containers/prune?filters=%7B%7D', 'containers', 'ContainerPrune'],
    ['POST', '/v1.41/commit?container=web&repo=snap', 'containers', 'ImageCommit'],
    ['GET', '/v1.41/containers/web/archive?path=%2Fetc%2Fpasswd', 'archive', 'ContainerArchive'],
    ['HEAD', '/v1.41/containers/web/archive?path=%2Fetc', 'archive', 'ContainerArchiveInfo'],
    ['PUT', '/v1.41/containers/web/archive?path=%2Ftmp', 'archive', 'PutContainerArchive'],
    ['GET', '/v1.41/containers/web/export', 'archive', 'ContainerExport'],
    ['POST', '/v1.41/containers/web/exec', 'exec', 'ContainerExec'],
    ['POST', '/v1.41/exec/9e1b/start', 'exec', 'ExecStart'],
    ['GET', '/v1.41/exec/9e1b/json', 'exec', 'ExecInspect'],
    ['GET', '/v1.41/images/json?all=0', 'images', 'ImageList'],
    ['POST', '/v1.41/images/create?fromImage=busybox&tag=latest', 'images', 'ImageCreate'],
    ['GET', '/v1.41/images/registry.example:5000/team/app:1.2/json', 'images', 'ImageInspect'],
    ['POST', '/v1.41/images/registry.example:5000/team/app/push?tag=1.2', 'images', 'ImagePush'],
    ['POST', '/v1.41/images/busybox/tag?repo=mine&tag=v1', 'images', 'ImageTag'],
    ['DELETE', '/v1.41/images/sha256:0123abcd?force=1', 'images', 'ImageDelete'],
    ['POST', '/v1.41/images/load?quiet=1', 'images', 'ImageLoad'],
    ['GET', '/v1.41/images/get?names=busybox', 'imageExport', 'ImageGetAll'],
    ['GET', '/v1.41/images/library/busybox:latest/get', 'imageExport', 'ImageGet'],
    ['POST', '/v1.41/build?t=app&dockerfile=Dockerfile', 'build', 'ImageBuild'],
    ['POST', '/v1.41/build/prune?all=1', 'build', 'BuildPrune'],
    ['POST', '/v1.41/session', 'session', 'Session'],
    ['POST', '/grpc', 'session', 'GRPC'],
    ['POST', '/v1.41/volumes/create', 'volumes', 'VolumeCreate'],
    ['GET', '/v1.41/volumes/data', 'volumes', 'VolumeInspect'],
    ['GET', '/v1.41/networks/bridge', 'networks', 'NetworkInspect'],
    ['POST', '/v1.41/networks/backend/connect', 'networks', 'NetworkConnect'],
    ['GET', '/v1.41/distribution/docker.io/library/busybox:latest/json', 'distribution', 'DistributionInspect'],
    ['POST', '/v1.41/plugins/pull?remote=vieux%2Fsshfs&name=sshfs', 'plugins', 'PluginPull'],
    ['POST', '/v1.41/plugins/vieux/sshfs:latest/enable', 'plugins', 'PluginEnable'],
    ['POST', '/v1.41/swarm/init', 'swarm', 'SwarmInit'],
    ['GET', '/v1.41/nodes/n1', 'nodes', 'NodeInspect'],
    ['GET', '/v1.41/services/web/logs?stdout=1', 'services', 'ServiceLogs'],
    ['GET', '/v1.41/tasks?filters=%7B%7D', 'tasks', 'TaskList'],
    ['POST', '/v1.41/secrets/create', 'secrets', 'SecretCreate'],
    ['GET', '/v1.41/configs/c1', 'configs', 'ConfigInspect'],
  ];
  for (const [method, path, section, op] of cases) {
    test(`${method} ${path} → ${section}`, () => assert.deepEqual(classify(method, path), { section, op }));
  }
});

describe('path tricks are refused or classified as the engine would route them', () => {
  const unknown: Array<[string, string]> = [
    ['POST', '/v1.41/containers/../plugins/pull'],
    ['POST', '/v1.41/containers/%2e%2e/plugins/pull'],
    ['POST', '/v1.41/containers/%2E%2E/%2e%2e/plugins/pull'],
    ['GET', '/v1.41/containers/web/./archive'],
    ['GET', '/v1.41/containers/web%00/json'],
    ['GET', '/v1.41/containers/%zz/json'],
    ['GET', '/v1.41/containers/%ff/json'],
    ['GET', '/v1.41/containers/web/ARCHIVE'],
    ['GET', '/V1.41/containers/json'],
    ['GET', '/v1.41/v1.41/containers/json'],
    ['get', '/v1.41/containers/json'],
    ['GET', 'http://engine/containers/json'],
    ['GET', '/v1.41/containers/web/archive#x'],
    ['POST', '/v1.41/plugins/pull%3Fremote=x'],
    ['PATCH', '/v1.41/containers/web/json'],
    ['GET', '/v1.41/system/other'],
    ['GET', '/'],
  ];
  for (const [method, path] of unknown) {
    test(`${method} ${path} → unknown`, () => assert.equal(classify(method, path).section, null));
  }
  const routed: Array<[string, string, SectionName, string]> = [
    ['GET', '//containers//json', 'containers', 'ContainerList'],
    ['GET', '/v1.41/containers%2Fjson', 'containers', 'ContainerList'],
    ['GET', '/v1.41/images/busybox%2Fget', 'imageExport', 'ImageGet'],
    ['GET', '/v1.41/containers/web/archive/', 'archive', 'ContainerArchive'],
    ['GET', '/v1.41/images/%252e%252e/json', 'images', 'ImageInspect'],
    ['GET', '/v1.41/containers/json?x=/../plugins/pull', 'containers', 'ContainerList'],
  ];
  for (const [method, path, section, op] of routed) {
    test(`${method} ${path} → ${section}`, () => assert.deepEqual(classify(method, path), { section, op }));
  }
});

function create(policy: AgentPolicy, body: unknown): ReturnType<AgentPolicy['check']> {
  const raw = typeof body === 'string' ? body : JSON.stringify(body);
  return policy.check('POST', '/v1.41/containers/create?name=t', Buffer.from(raw));
}

const hc = (hostConfig: Record<string, unknown>): Record<string, unknown> => ({ Image: 'busybox', HostConfig: hostConfig });
const volumeMount = (Options: Record<string, string>): Record<string, unknown> =>
  hc({ Mounts: [{ Type: 'volume', Source: 'v', Target: '/v', VolumeOptions: { DriverConfig: { Name: 'local', Options } } }] });

describe('container create bodies refused by the default policy', () => {
  const cases: Array<[string, unknown, RegExp]> = [
    ['Privileged', hc({ Privileged: true }), /privileged containers \(allow\.privileged is false/],
    ['top-level Privileged (deprecated embedded HostConfig)', { Image: 'busybox', Privileged: true }, /privileged/],
    ['lower-case keys', { image: 'busybox', hostconfig: { privileged: true } }, /privileged/],
    ['folded-together keys', '{"Image":"busybox","HostConfig":{"Privileged":false,"privileged":true}}', /duplicate key "privileged"/],
    ['repeated HostConfig', '{"HostConfig":{"Privileged":true},"HostConfig":{}}', /duplicate key "HostConfig"/],
    ['Unicode-folded key', '{"HostConfig":{"\u017FecurityOpt":["seccomp=unconfined"]}}', /seccomp=unconfined/],
    ['Kelvin-sign key', '{"HostConfig":{"Networ\u212AMode":"host"}}', /NetworkMode="host"/i],
    ['bind /', hc({ Binds: ['/:/host'] }), /host root "\/" \(allow\.bindRoot is false/],
    ['bind //', hc({ Binds: ['//:/host:ro'] }), /host root/],
    ['bind /./', hc({ Binds: ['/./:/host'] }), /host root/],
    ['bind /..', hc({ Binds: ['/..:/host'] }), /host root/],
    ['bind /etc/../..', hc({ Binds: ['/etc/../..:/host'] }), /host root/],
    ['bind ///', hc({ Binds: ['///:/host:rw'] }), /host root/],
    ['bind docker.sock', hc({ Binds: ['/var/run/docker.sock:/var/run/docker.sock'] }), /Docker socket.*allow\.dockerSocket is false/],
    ['bind /run/docker.sock', hc({ Binds: ['/run/docker.sock:/s'] }), /Docker socket/],
    ['bind a rootless docker.sock', hc({ Binds: ['/run/user/1000/docker.sock:/s'] }), /Docker socket/],
    ['bind /var/run (socket parent)', hc({ Binds: ['/var/run/:/x'] }), /Docker socket or a directory holding it, "\/var\/run"/],
    ['bind /run (socket parent)', hc({ Binds: ['/run:/x'] }), /Docker socket/],
    ['bind /var (socket parent)', hc({ Binds: ['/var//:/x'] }), /Docker socket/],
    ['bind containerd socket', hc({ Binds: ['/run/containerd:/c'] }), /Docker socket/],
    ['Mounts bind /', hc({ Mounts: [{ Type: 'bind', Source: '/', Target: '/host' }] }), /host root/],
    ['Mounts bind //', hc({ Mounts: [{ Type: 'bind', Source: '//', Target: '/host' }] }), /host root "\/", written "\/\/"/],
    ['Mounts bind socket', hc({ Mounts: [{ Type: 'bind', Source: '/var/run/docker.sock', Target: '/s' }] }), /Docker socket/],
    ['Mounts bind relative', hc({ Mounts: [{ Type: 'bind', Source: 'etc', Target: '/e' }] }), /absolute host paths/],
    ['volume bind trick /', volumeMount({ type: 'none', o: 'bind', device: '/' }), /host root/],
    ['volume bind trick /./', volumeMount({ type: 'none', o: 'bind', device: '/./' }), /host root/],
    ['volume rbind socket parent', volumeMount({ type: 'ext4', o: 'rbind,ro', device: '/var/run' }), /Docker socket/],
    ['volume block device', volumeMount({ type: 'ext4', device: '/dev/sda1' }), /filesystem type "ext4".*allow\.devices is false/],
    ['volume host procfs', volumeMount({ type: 'proc', device: 'proc' }), /allow\.devices/],
    ['volume overlay of /', volumeMount({ type: 'overlay', device: 'overlay', o: 'lowerdir=/,upperdir=/u,workdir=/w' }), /allow\.devices/],
    ['PidMode host', hc({ PidMode: 'host' }), /PidMode="host" \(allow\.hostNamespaces is false/],
    ['IpcMode host', hc({ IpcMode: 'host' }), /IpcMode/],
    ['NetworkMode host', hc({ NetworkMode: 'host' }), /NetworkMode/],
    ['UTSMode host', hc({ UTSMode: 'host' }), /UTSMode/],
    ['UsernsMode host', hc({ UsernsMode: 'host' }), /UsernsMode/],
    ['CgroupnsMode host', hc({ CgroupnsMode: 'HOST' }), /CgroupnsMode/],
    ['EndpointsConfig host', { Image: 'busybox', NetworkingConfig: { EndpointsConfig: { host: {} } } }, /EndpointsConfig/],
    ['CapAdd SYS_ADMIN', hc({ CapAdd: ['SYS_ADMIN'] }), /capability "SYS_ADMIN".*SYS_ADMIN is not in allow\.capabilities/],
    ['CapAdd cap_sys_admin', hc({ CapAdd: ['cap_sys_admin'] }), /SYS_ADMIN is not in allow/],
    ['CapAdd ALL', hc({ CapAdd: ['ALL'] }), /ALL is not in allow/],
    ['Capabilities (API 1.40)', hc({ Capabilities: ['CAP_NET_ADMIN'] }), /NET_ADMIN/],
    ['Devices', hc({ Devices: [{ PathOnHost: '/dev/sda', PathInContainer: '/dev/sda', CgroupPermissions: 'rwm' }] }), /HostConfig\.Devices \(allow\.devices is false/],
    ['DeviceRequests', hc({ DeviceRequests: [{ Driver: 'nvidia', Count: -1, Capabilities: [['gpu']] }] }), /DeviceRequests/],
    ['DeviceCgroupRules', hc({ DeviceCgroupRules: ['c *:* rwm'] }), /DeviceCgroupRules/],
    ['seccomp=unconfined', hc({ SecurityOpt: ['seccomp=unconfined'] }), /security option "seccomp=unconfined", which counts as privileged/],
    ['seccomp:unconfined', hc({ SecurityOpt: ['seccomp:unconfined'] }), /seccomp:unconfined/],
    ['custom seccomp profile', hc({ SecurityOpt: ['seccomp={"defaultAction":"SCMP_ACT_ALLOW"}'] }), /seccomp=/],
    ['apparmor=unconfined', hc({ SecurityOpt: ['apparmor=unconfined'] }), /apparmor/],
    ['label=disable', hc({ SecurityOpt: ['label=disable'] }), /label=disable/],
    ['label:type:spc_t', hc({ SecurityOpt: ['label:type:spc_t'] }), /spc_t/],
    ['systempaths=unconfined', hc({ SecurityOpt: ['systempaths=unconfined'] }), /systempaths/],
    ['empty MaskedPaths (what the CLI sends)', hc({ MaskedPaths: [], ReadonlyPaths: [] }), /MaskedPaths.*counts as privileged/],
    ['HostConfig not an object', { Image: 'busybox', HostConfig: 'x' }, /malformed HostConfig/],
    ['Binds not a list', hc({ Binds: '/:/host' }), /malformed HostConfig\.Binds/],
    ['CapAdd with a number', hc({ CapAdd: [1] }), /malformed HostConfig\.CapAdd/],
    ['body not an object', [], /malformed container config/],
    ['not JSON', 'not json', /malformed JSON body/],
    ['empty body', '', /malformed JSON body/],
    ['a second JSON value', '{"Image":"busybox"} {"HostConfig":{"Privileged":true}}', /after the JSON value/],
    ['a byte-order mark', '\uFEFF{"Image":"busybox"}', /malformed JSON body/],
    ['deep nesting', `${'['.repeat(100_000)}${']'.repeat(100_000)}`, /nesting deeper than/],
  ];
  for (const [name, body, reason] of cases) {
    test(name, () => {
      const verdict = create(defaults, body);
      assert.equal(verdict.allowed, false);
      assert.ok(!verdict.allowed);
      assert.match(verdict.reason, reason);
      assert.match(verdict.reason, /^dockfleet policy on this host refuses .*the default policy\)$/);
      assert.equal(verdict.section, 'containers');
    });
  }
});

test('the refusal reads well when the Docker CLI prints it', () => {
  const verdict = create(restricted, hc({ Privileged: true }));
  assert.deepEqual(verdict, {
    allowed: false,
    section: 'containers',
    reason: `dockfleet policy on this host refuses privileged containers (allow.privileged is false in ${FILE})`,
  });
});

describe('bind mounts outside allow.bindMounts', () => {
  const cases: Array<[string, string]> = [
    ['/etc', '/etc:/etc'],
    ['a sibling sharing a prefix', '/srvx:/x'],
    ['climbing out', '/srv/../etc:/x'],
    ['the parent of an allowed dir', '/:/x'],
  ];
  for (const [name, bind] of cases) {
    test(name, () => {
      const verdict = create(restricted, hc({ Binds: [bind] }));
      assert.ok(!verdict.allowed);
      assert.match(verdict.reason, /allow\.bind(Mounts is \/srv, \/data|Root is false) in \/etc\/dockfleet\/policy\.json\)$/);
    });
  }
  test('a volume bind trick outside the allowed paths', () => {
    const verdict = restricted.check('POST', '/volumes/create', Buffer.from(JSON.stringify({ DriverOpts: { type: 'none', o: 'bind', device: '/home' } })));
    assert.ok(!verdict.allowed);
    assert.match(verdict.reason, /"\/home", outside the allowed host paths/);
  });
  test('an empty list forbids every bind', () => {
    const verdict = create(policyWith({ allow: { bindMounts: [] } }), hc({ Binds: ['/srv:/srv'] }));
    assert.ok(!verdict.allowed);
    assert.match(verdict.reason, /allow\.bindMounts is empty/);
  });
});

describe('container create bodies that pass', () => {
  const cliRun = {
    Hostname: '',
    User: '',
    AttachStdout: true,
    Tty: false,
    Env: ['A=1'],
    Cmd: ['sh', '-c', 'echo hi'],
    Image: 'busybox',
    Volumes: {},
    Labels: {},
    HostConfig: {
      Binds: ['data:/data', '/srv/app:/app:ro', '/data//cache/:/cache'],
      NetworkMode: 'default',
      PortBindings: { '80/tcp': [{ HostIp: '', HostPort: '8080' }] },
      RestartPolicy: { Name: 'no', MaximumRetryCount: 0 },
      AutoRemove: true,
      CapAdd: ['NET_BIND_SERVICE'],
      CapDrop: ['ALL'],
      CgroupnsMode: 'private',
      Dns: [],
      IpcMode: 'private',
      Privileged: false,
      SecurityOpt: null,
      UTSMode: '',
      UsernsMode: '',
      PidMode: '',
      MaskedPaths: null,
      ReadonlyPaths: null,
      Devices: [],
      DeviceCgroupRules: null,
      DeviceRequests: null,
      Mounts: [
        { Type: 'tmpfs', Target: '/run', TmpfsOptions: { SizeBytes: 67108864 } },
        { Type: 'volume', Source: 'logs', Target: '/logs' },
      ],
    },
    NetworkingConfig: { EndpointsConfig: { default: {} } },
  };
  const cases: Array<[string, AgentPolicy, unknown]> = [
    ['a plain docker run with a volume and binds under allowed prefixes', restricted, cliRun],
    ['CAP_ prefix in any case', restricted, hc({ CapAdd: ['cap_net_bind_service', 'CHOWN'] })],
    ['a capability listed in allow.capabilities', policyWith({ allow: { capabilities: ['cap_sys_ptrace'] } }), hc({ CapAdd: ['SYS_PTRACE'] })],
    ['allow.capabilities ALL', policyWith({ allow: { capabilities: ['ALL'] } }), hc({ CapAdd: ['ALL'] })],
    ['harmless security options', defaults, hc({ SecurityOpt: ['no-new-privileges', 'apparmor=docker-default', 'label=level:s0:c100', 'seccomp=builtin'] })],
    ['a tmpfs volume', defaults, volumeMount({ type: 'tmpfs', device: 'tmpfs', o: 'size=100m,uid=1000' })],
    ['an nfs volume', defaults, volumeMount({ type: 'nfs', o: 'addr=10.0.0.1,rw', device: ':/export' })],
    ['a volume bind under an allowed prefix', restricted, volumeMount({ type: 'none', o: 'bind', device: '/srv/vol' })],
    ['any non-socket bind when allow.bindMounts is not set', defaults, hc({ Binds: ['/etc:/host-etc:ro'] })],
    ['a path merely mentioning docker', defaults, hc({ Binds: ['/srv/docker.socks:/x', '/var/lib/app:/app'] })],
    ['allow.privileged', policyWith({ allow: { privileged: true } }), hc({ Privileged: true, SecurityOpt: ['seccomp=unconfined'], MaskedPaths: [] })],
    ['allow.bindRoot', policyWith({ allow: { bindRoot: true } }), hc({ Binds: ['//:/host'] })],
    ['allow.dockerSocket', policyWith({ allow: { dockerSocket: true } }), hc({ Binds: ['/var/run/docker.sock:/var/run/docker.sock'] })],
    ['allow.hostNamespaces', policyWith({ allow: { hostNamespaces: true } }), hc({ NetworkMode: 'host', PidMode: 'host' })],
    ['allow.devices', policyWith({ allow: { devices: true } }), hc({ Devices: [{ PathOnHost: '/dev/fuse' }], DeviceCgroupRules: ['c 10:229 rwm'] })],
  ];
  for (const [name, policy, body] of cases) {
    test(name, () => assert.deepEqual(create(policy, body), { allowed: true }));
  }
});

describe('exec create, volume create, plugins and builds', () => {
  const exec = (policy: AgentPolicy, body: unknown) => policy.check('POST', '/v1.41/containers/web/exec', Buffer.from(JSON.stringify(body)));
  const volume = (body: unknown) => defaults.check('POST', '/v1.41/volumes/create', Buffer.from(JSON.stringify(body)));
  const plugins = (pluginInstall: boolean) => policyWith({ sections: { plugins: true }, allow: { pluginInstall } });

  test('privileged exec is refused unless allow.privileged', () => {
    const verdict = exec(defaults, { Cmd: ['sh'], Privileged: true, AttachStdout: true });
    assert.ok(!verdict.allowed);
    assert.match(verdict.reason, /privileged exec sessions \(allow\.privileged is false in the default policy\)/);
    assert.deepEqual(exec(defaults, { Cmd: ['sh'], Privileged: false }), { allowed: true });
    assert.deepEqual(exec(policyWith({ allow: { privileged: true } }), { Cmd: ['sh'], Privileged: true }), { allowed: true });
  });
  for (const [name, DriverOpts] of [
    ['bind of /', { type: 'none', o: 'bind', device: '/' }],
    ['bind of //', { type: 'none', o: 'bind', device: '//' }],
    ['bind of the socket parent', { type: 'none', o: 'bind', device: '/var/run' }],
    ['a block device', { type: 'xfs', device: '/dev/nvme0n1p1' }],
  ] as const) {
    test(`volume create refuses ${name}`, () => assert.equal(volume({ Name: 'v', DriverOpts }).allowed, false));
  }
  test('volume create passes plain and tmpfs volumes', () => {
    assert.deepEqual(volume({ Name: 'v', Driver: 'local', DriverOpts: {}, Labels: {} }), { allowed: true });
    assert.deepEqual(volume({ Name: 'v', DriverOpts: { type: 'tmpfs', device: 'tmpfs' } }), { allowed: true });
  });
  test('plugin install is refused even with the plugins section on, unless allow.pluginInstall', () => {
    for (const [method, path] of [
      ['POST', '/v1.41/plugins/pull?remote=vieux/sshfs'],
      ['POST', '/v1.41/plugins/create?name=p'],
      ['POST', '/v1.41/plugins/p:latest/upgrade?remote=x'],
      ['POST', '/v1.41/plugins/p/set'],
    ] as const) {
      const verdict = plugins(false).check(method, path, null);
      assert.ok(!verdict.allowed, path);
      assert.match(verdict.reason, /plugins \(allow\.pluginInstall is false in \/etc\/dockfleet\/policy\.json\)$/);
      assert.deepEqual(plugins(true).check(method, path, null), { allowed: true });
    }
    assert.deepEqual(plugins(false).check('POST', '/v1.41/plugins/p/enable', null), { allowed: true });
    assert.equal(defaults.check('GET', '/v1.41/plugins', null).allowed, false);
  });
  test('a build on the host network needs allow.hostNamespaces', () => {
    const verdict = defaults.check('POST', '/v1.41/build?t=x&networkmode=host', null);
    assert.ok(!verdict.allowed);
    assert.match(verdict.reason, /networkmode=host/);
    assert.deepEqual(defaults.check('POST', '/v1.41/build?t=x&networkmode=default', null), { allowed: true });
  });
});

describe('sections and bodies', () => {
  test('sections off by default are refused with the section named', () => {
    for (const [method, path, section] of [
      ['GET', '/v1.41/containers/web/archive?path=/etc', 'archive'],
      ['GET', '/v1.41/containers/web/export', 'archive'],
      ['GET', '/v1.41/images/get?names=x', 'imageExport'],
      ['POST', '/v1.41/swarm/init', 'swarm'],
      ['POST', '/v1.41/auth', 'auth'],
      ['POST', '/session', 'session'],
    ] as const) {
      const verdict = defaults.check(method, path, null);
      assert.deepEqual(verdict.allowed ? null : verdict.section, section, path);
      assert.ok(!verdict.allowed);
      assert.match(verdict.reason, new RegExp(`\\(sections\\.${section} is not true in the default policy\\)$`));
    }
  });
  test('unknown endpoints are refused with section null', () => {
    const verdict = defaults.check('POST', '/v1.41/containers/%2e%2e/plugins/pull', null);
    assert.ok(!verdict.allowed);
    assert.equal(verdict.section, null);
    assert.match(verdict.reason, /not a Docker Engine API endpoint it recognises \(unknown endpoints are always refused in the default policy\)$/);
  });
  test('needsBody: only inspected requests in enabled sections', () => {
    assert.equal(defaults.needsBody('POST', '/v1.41/containers/create'), true);
    assert.equal(defaults.needsBody('POST', '/v1.41/containers/web/exec'), true);
    assert.equal(defaults.needsBody('POST', '/v1.41/volumes/create'), true);
    // A start body is read only to refuse it: engines before API 1.24 apply it as a HostConfig.
    assert.equal(defaults.needsBody('POST', '/v1.41/containers/web/start'), true);
    assert.deepEqual(defaults.check('POST', '/v1.41/containers/web/start', Buffer.alloc(0)), { allowed: true });
    assert.deepEqual(defaults.check('POST', '/v1.41/containers/web/start', Buffer.from(' {} ')), { allowed: true });
    assert.equal(defaults.check('POST', '/v1.23/containers/web/start', Buffer.from('{"Binds":["/:/h"]}')).allowed, false);
    assert.equal(defaults.check('POST', '/v1.23/containers/web/start', null).allowed, false);
    assert.equal(defaults.needsBody('POST', '/v1.41/build'), false);
    assert.equal(defaults.needsBody('POST', '/v1.41/plugins/pull'), false);
    assert.equal(policyWith({ sections: { containers: true } }).needsBody('POST', '/containers/web/exec'), false);
  });
  test('an inspected request without its body, or with one too large, is refused', () => {
    assert.equal(defaults.check('POST', '/containers/create', null).allowed, false);
    const big = Buffer.from(JSON.stringify({ Image: 'busybox', Env: ['X='.padEnd(MAX_INSPECTED_BODY, 'x')] }));
    const verdict = defaults.check('POST', '/containers/create', big);
    assert.ok(!verdict.allowed);
    assert.match(verdict.reason, /over 1048576 bytes/);
  });
  test('the strict parser agrees with JSON.parse on plain JSON', () => {
    const text = '{"a":[1,-2.5e3,true,false,null,"x\\u00e9\\n"],"b":{"c":{}},"__proto__":{"d":1}}';
    const parsed = parseStrictJson(text);
    assert.ok(parsed.ok);
    assert.equal(JSON.stringify(parsed.value), JSON.stringify(JSON.parse(text)));
    assert.equal(Object.getPrototypeOf(parsed.value), null);
  });
});

describe('the policy file', () => {
  let dir: string;
  before(async () => {
    dir = await mkdtemp(join(tmpdir(), 'dockfleet-policy-'));
  });
  after(() => rm(dir, { recursive: true, force: true }));

  async function fileWith(name: string, text: string): Promise<string> {
    const path = join(dir, name);
    await writeFile(path, text);
    return path;
  }

  test('no path, or a missing file, gives the defaults', async () => {
    assert.equal(await loadPolicy(null), DEFAULT_POLICY);
    const missing = join(dir, 'absent.json');
    const policy = await loadPolicy(missing);
    assert.deepEqual(policy.sections, DEFAULT_POLICY.sections);
    assert.deepEqual(policy.allow, DEFAULT_POLICY.allow);
    assert.equal(policy.source, `the default policy, as ${missing} does not exist`);
    assert.equal(DEFAULT_POLICY.sections.containers, true);
    assert.equal(DEFAULT_POLICY.sections.archive, false);
    const { resources: _resources, ...allowFlat } = DEFAULT_POLICY.allow; // allow.resources: see resource-controls.test.ts
    assert.deepEqual(allowFlat, {
      privileged: false,
      bindMounts: null,
      bindRoot: false,
      dockerSocket: false,
      hostNamespaces: false,
      capabilities: [],
      devices: false,
      pluginInstall: false,
      containerWritableBindSources: false,
      remoteBuildContexts: false,
    });
  });

  const malformed: Array<[string, string, RegExp]> = [
    ['not JSON', '{"sections": {', /is not valid JSON/],
    ['a list', '[]', /invalid at the top level: .*expected object/],
    ['an unknown section', '{"sections": {"archives": true}}', /invalid at sections: .*"archives"/],
    ['a section that is not a boolean', '{"sections": {"archive": "yes"}}', /invalid at sections\.archive: .*expected boolean/],
    ['a misspelt allow key', '{"allow": {"privilidged": false}}', /invalid at allow: .*"privilidged"/],
    ['allow.privileged not a boolean', '{"allow": {"privileged": "false"}}', /invalid at allow\.privileged: /],
    ['a relative bind prefix', '{"allow": {"bindMounts": ["/srv", "data"]}}', /invalid at allow\.bindMounts\[1\]: must be an absolute host path/],
    ['a bad capability', '{"allow": {"capabilities": ["SYS ADMIN"]}}', /invalid at allow\.capabilities\[0\]: must be a capability name/],
    ['an unknown top-level key', '{"section": {}}', /"section"/],
  ];
  for (const [name, text, message] of malformed) {
    test(`a file with ${name} stops the agent with a one-line error naming it`, async () => {
      const path = await fileWith(`${name.replace(/\W+/g, '-')}.json`, text);
      await assert.rejects(AgentPolicy.load(path), (err: Error) => {
        assert.match(err.message, message);
        assert.ok(err.message.startsWith(`policy file ${path} `), err.message);
        assert.ok(!err.message.includes('\n'), err.message);
        return true;
      });
    });
  }

  test('a directory where the file should be is an error, not the defaults', async () => {
    await assert.rejects(loadPolicy(dir), /cannot read policy file .*EISDIR/);
  });

  test('a file enabling archive lists every section it wants', async () => {
    const sections = { ...Object.fromEntries(Object.entries(DEFAULT_POLICY.sections).filter(([, on]) => on)), archive: true };
    const policy = await AgentPolicy.load(await fileWith('archive.json', JSON.stringify({ sections, allow: { bindMounts: ['/srv/'] } })));
    assert.deepEqual(policy.check('GET', '/v1.41/containers/web/archive?path=/etc', null), { allowed: true });
    assert.deepEqual(policy.check('PUT', '/v1.41/containers/web/archive?path=/tmp', null), { allowed: true });
    assert.deepEqual(policy.check('GET', '/v1.41/containers/json', null), { allowed: true });
    assert.equal(policy.check('GET', '/v1.41/images/get', null).allowed, false);
    assert.deepEqual(policy.policy.allow.bindMounts, ['/srv']);
    assert.match(policy.summary(), /sections .*archive.*; allow bindMounts=\/srv$/);
  });

  test('a sections list is complete: anything not set true is off', async () => {
    const policy = await AgentPolicy.load(await fileWith('only-archive.json', '{"sections": {"archive": true, "images": false}}'));
    const verdict = policy.check('GET', '/v1.41/containers/json', null);
    assert.ok(!verdict.allowed);
    assert.match(verdict.reason, /managing containers \(sections\.containers is not true in .*only-archive\.json\)$/);
    assert.deepEqual(policy.check('GET', '/containers/web/export', null), { allowed: true });
    assert.equal(policy.check('GET', '/_ping', null).allowed, false);
  });
});

test('every section has routes, and turning every section on opens them', () => {
  // volumeFiles guards the hub UI's file browser and ingress the edge's connections: neither is a Docker endpoint.
  for (const name of SECTION_NAMES.filter((n) => n !== 'volumeFiles' && n !== 'ingress'))
    assert.ok(
      API_ROUTES.some((route) => route.section === name),
      name,
    );
  const all = policyWith({ sections: everything });
  for (const route of API_ROUTES) assert.equal(all.policy.sections[route.section], true);
  assert.deepEqual(all.check('POST', '/v1.41/services/create', Buffer.from('{}')), { allowed: true });
});

test("the edge's connections to containers are their own section, on by default and off when a sections list leaves it out", async () => {
  assert.deepEqual((await AgentPolicy.load(null)).checkIngress(), { allowed: true });
  const off = policyWith({ sections: { containers: true } }).checkIngress();
  assert.ok(!off.allowed);
  assert.match(off.reason, /refuses the edge connecting to containers published by ingress labels \(sections\.ingress is not true/);
  assert.deepEqual(policyWith({ sections: { ingress: true } }).checkIngress(), { allowed: true });
});

test('the volume file browser is its own section, off by default', async () => {
  const defaults = await AgentPolicy.load(null);
  const refused = defaults.checkVolumeFiles();
  assert.ok(!refused.allowed);
  assert.match(refused.reason, /^dockfleet policy on this host refuses browsing or changing files inside volumes \(sections\.volumeFiles is not true in the default policy/);
  assert.deepEqual(policyWith({ sections: { volumeFiles: true } }).checkVolumeFiles(), { allowed: true });
});
