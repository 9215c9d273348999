// The run/edit form's pure parts (src/web/lib/container-spec.ts): form → create body with per-field
// errors, inspect → form, form → inspect → form round trips, and the recreate body: it keeps
// volumes (anonymous ones by name), networks and the settings someone set, and sends back none
// of the fields the engine fills in by itself (MaskedPaths, ReadonlyPaths, the default ShmSize…)
// that the host policy would judge as if the user had asked for them.
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { EMPTY_SPEC, joinWords, recreateBody, specFromInspect, specToCreateBody, splitWords, type InspectForSpec, type RunSpec } from '../src/web/lib/container-spec.ts';

const spec = (over: Partial<RunSpec>): RunSpec => ({ ...EMPTY_SPEC, ...over });

test('command words: quotes group, backslashes escape, and joinWords reads back the same', () => {
  assert.deepEqual(splitWords('sh -c "echo \\"hi\\" there" \'a b\' x\\ y ""'), ['sh', '-c', 'echo "hi" there', 'a b', 'x y', '']);
  assert.throws(() => splitWords('echo "open'), /unclosed " quote/);
  for (const words of [
    ['sh', '-c', 'echo "hi"; ls $HOME'],
    ['a b', '', 'c\\d'],
    ['plain', '--flag=1', '/p/a.t:h'],
  ]) {
    assert.deepEqual(splitWords(joinWords(words)), words);
  }
});

test('a full form becomes the create body the Engine API takes', () => {
  const r = specToCreateBody(
    spec({
      image: 'nginx:1.27',
      name: 'web',
      command: 'nginx -g "daemon off;"',
      env: 'A=1\n# note\nB=two=2\n',
      ports: '8080:80\n127.0.0.1:5353:53/udp\n[::1]:9000:9000\n443',
      volumes: 'data:/data\n/srv/site:/site:ro',
      network: 'backend',
      restart: 'on-failure',
      labels: 'team=web\nempty=',
      memoryMb: '64',
      cpus: '0.5',
      pids: '100',
    }),
  );
  assert.deepEqual(r.errors, {});
  assert.deepEqual(r.body, {
    Image: 'nginx:1.27',
    Cmd: ['nginx', '-g', 'daemon off;'],
    Env: ['A=1', 'B=two=2'],
    Labels: { team: 'web', empty: '' },
    ExposedPorts: { '80/tcp': {}, '53/udp': {}, '9000/tcp': {}, '443/tcp': {} },
    HostConfig: {
      RestartPolicy: { Name: 'on-failure', MaximumRetryCount: 0 },
      PortBindings: {
        '80/tcp': [{ HostIp: '', HostPort: '8080' }],
        '53/udp': [{ HostIp: '127.0.0.1', HostPort: '5353' }],
        '9000/tcp': [{ HostIp: '::1', HostPort: '9000' }],
        '443/tcp': [{ HostIp: '', HostPort: '' }],
      },
      Binds: ['data:/data', '/srv/site:/site:ro'],
      Memory: 64 * 1024 * 1024,
      NanoCpus: 500_000_000,
      PidsLimit: 100,
      NetworkMode: 'backend',
    },
  });
});

test('bad input: every wrong field gets its own message and no body is made', () => {
  const r = specToCreateBody(
    spec({
      image: 'has space',
      name: '-bad',
      command: 'echo "x',
      env: 'NOEQUALS',
      ports: '70000:80',
      volumes: 'relative:path',
      labels: '=v',
      memoryMb: '-1',
      cpus: 'lots',
      pids: '1.5',
    }),
  );
  assert.equal(r.body, null);
  assert.deepEqual(Object.keys(r.errors).sort(), ['command', 'cpus', 'env', 'image', 'labels', 'memoryMb', 'name', 'pids', 'ports', 'volumes']);
  assert.match(r.errors.env!, /Line 1/);
  assert.match(specToCreateBody(spec({})).errors.image!, /Give an image/);
});

const inspected: InspectForSpec = {
  Id: 'a1b2c3d4e5f60718293a4b5c6d7e8f90a1b2c3d4e5f60718293a4b5c6d7e8f9',
  Name: '/web-1',
  Config: {
    Hostname: 'a1b2c3d4e5f6',
    Image: 'busybox:test',
    Cmd: ['sh', '-c', 'echo kept > /data/f; sleep 3600'],
    Entrypoint: null,
    WorkingDir: '/srv',
    User: '1000',
    Tty: false,
    Env: ['PATH=/bin', 'MODE=one'],
    Labels: { team: 'web' },
    Volumes: { '/cache': {} },
    StopSignal: 'SIGINT',
  },
  HostConfig: {
    Binds: ['appdata:/data'],
    NetworkMode: 'appnet',
    PortBindings: { '80/tcp': [{ HostIp: '127.0.0.1', HostPort: '8080' }], '53/udp': [{ HostIp: '', HostPort: '' }] },
    RestartPolicy: { Name: 'unless-stopped', MaximumRetryCount: 0 },
    Memory: 64 * 1024 * 1024,
    MemorySwap: 128 * 1024 * 1024,
    NanoCpus: 0,
    PidsLimit: null,
    // What the engine fills in by itself:
    MaskedPaths: ['/proc/asound', '/proc/kcore'],
    ReadonlyPaths: ['/proc/bus'],
    ShmSize: 64 * 1024 * 1024,
    IpcMode: 'private',
    CgroupnsMode: 'private',
    LogConfig: { Type: 'json-file', Config: {} },
    OomScoreAdj: 0,
    Privileged: false,
    CapAdd: null,
    ConsoleSize: [0, 0],
    Isolation: '',
    CpuShares: 0,
    // What someone set:
    CapDrop: ['NET_RAW'],
    ExtraHosts: ['db:10.0.0.5'],
    Init: true,
  },
  Mounts: [
    { Type: 'volume', Name: 'appdata', Source: '/var/lib/docker/volumes/appdata/_data', Destination: '/data', RW: true },
    { Type: 'volume', Name: '0f9e8d7c6b5a', Source: '/var/lib/docker/volumes/0f9e8d7c6b5a/_data', Destination: '/cache', RW: true },
  ],
  NetworkSettings: {
    Networks: {
      appnet: { Aliases: ['a1b2c3d4e5f6', 'web'], IPAMConfig: { IPv4Address: '172.30.0.9' } },
      other: { Aliases: null, IPAMConfig: null },
    },
  },
};

test('inspect → form shows what the container was made with; the form makes the same settings again', () => {
  const form = specFromInspect(inspected);
  assert.deepEqual(form, {
    image: 'busybox:test',
    name: 'web-1',
    command: 'sh -c "echo kept > /data/f; sleep 3600"',
    env: 'PATH=/bin\nMODE=one',
    ports: '127.0.0.1:8080:80\n53/udp',
    volumes: 'appdata:/data',
    network: 'appnet',
    restart: 'unless-stopped',
    labels: 'team=web',
    memoryMb: '64',
    cpus: '',
    pids: '',
  });
  const body = specToCreateBody(form).body!;
  assert.deepEqual(body.Cmd, inspected.Config.Cmd);
  assert.deepEqual(body.HostConfig.PortBindings, { '80/tcp': [{ HostIp: '127.0.0.1', HostPort: '8080' }], '53/udp': [{ HostIp: '', HostPort: '' }] });
  assert.deepEqual(specFromInspect({ ...inspected, Config: { ...inspected.Config, ...body }, HostConfig: { ...inspected.HostConfig, ...body.HostConfig } }), form);
});

test('recreate: the edits, the volumes (anonymous ones by name), the networks and the settings someone set — nothing the engine filled in', () => {
  const form = { ...specFromInspect(inspected), env: 'PATH=/bin\nMODE=two', memoryMb: '32' };
  const r = recreateBody(inspected, form);
  assert.deepEqual(r.errors, {});
  const b = r.body!;
  const hc = b.HostConfig;
  assert.deepEqual(b.Env, ['PATH=/bin', 'MODE=two']);
  assert.equal(hc.Memory, 32 * 1024 * 1024);
  for (const k of [
    'MaskedPaths',
    'ReadonlyPaths',
    'ShmSize',
    'IpcMode',
    'CgroupnsMode',
    'LogConfig',
    'OomScoreAdj',
    'Privileged',
    'CapAdd',
    'ConsoleSize',
    'Isolation',
    'CpuShares',
    'PidsLimit',
    'NanoCpus',
  ]) {
    assert.equal(k in hc, false, `${k} is not sent back`);
  }
  assert.equal('MemorySwap' in hc, false, "the engine's 2× swap goes, above all when the memory limit changed");
  assert.equal('Hostname' in b, false, "the old container's ID as hostname is not carried");
  assert.equal('Volumes' in b, false);
  assert.deepEqual(hc.CapDrop, ['NET_RAW']);
  assert.deepEqual(hc.ExtraHosts, ['db:10.0.0.5']);
  assert.equal(hc.Init, true);
  assert.equal(b.WorkingDir, '/srv');
  assert.equal(b.User, '1000');
  assert.equal(b.StopSignal, 'SIGINT');
  assert.deepEqual(hc.Binds, ['appdata:/data']);
  assert.deepEqual(hc.Mounts, [{ Type: 'volume', Source: '0f9e8d7c6b5a', Target: '/cache', ReadOnly: false }]);
  assert.equal(hc.NetworkMode, 'appnet');
  assert.deepEqual(b.NetworkingConfig, { EndpointsConfig: { appnet: { Aliases: ['web'], IPAMConfig: { IPv4Address: '172.30.0.9' } } } });
  assert.deepEqual(r.connect, [{ network: 'other', settings: {} }]);
  assert.deepEqual(b.HostConfig.RestartPolicy, { Name: 'unless-stopped' });
});

test('recreate: a volume the form dropped stays dropped; a hand-set swap, hostname and retry count are kept', () => {
  const info: InspectForSpec = {
    ...inspected,
    Config: { ...inspected.Config, Hostname: 'shop' },
    HostConfig: { ...inspected.HostConfig, MemorySwap: 96 * 1024 * 1024, RestartPolicy: { Name: 'on-failure', MaximumRetryCount: 5 } },
  };
  const r = recreateBody(info, { ...specFromInspect(info), volumes: '' });
  const hc = r.body!.HostConfig;
  assert.deepEqual(hc.Binds, []);
  assert.deepEqual(hc.Mounts, [{ Type: 'volume', Source: '0f9e8d7c6b5a', Target: '/cache', ReadOnly: false }], 'the dropped named volume is not re-attached; the anonymous one is');
  assert.equal(hc.MemorySwap, 96 * 1024 * 1024);
  assert.equal(r.body!.Hostname, 'shop');
  assert.deepEqual(hc.RestartPolicy, { Name: 'on-failure', MaximumRetryCount: 5 });
});

test('recreate on the default bridge: no networking config, nothing to connect; bad form input makes no body', () => {
  const info: InspectForSpec = { ...inspected, HostConfig: { ...inspected.HostConfig, NetworkMode: 'default' }, NetworkSettings: { Networks: { bridge: { Aliases: null, IPAMConfig: null } } } };
  const r = recreateBody(info, specFromInspect(info));
  assert.equal(r.body!.HostConfig.NetworkMode, 'default');
  assert.equal('NetworkingConfig' in r.body!, false);
  assert.deepEqual(r.connect, []);
  const bad = recreateBody(info, { ...specFromInspect(info), env: 'oops' });
  assert.equal(bad.body, null);
  assert.match(bad.errors.env!, /KEY=value/);
});
