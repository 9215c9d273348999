/**
 * Installed as services (issue 16): `dockfleet agent install` enrolls once and writes a hardened
 * systemd unit with no code in it; `dockfleet hub install` likewise; both units pass
 * `systemd-analyze verify` without a word; the unit's own ExecStart, run by hand, connects the
 * agent; uninstall removes the unit and keeps the state. Where systemd is PID 1, it also starts
 * the unit for real.
 */
import assert from 'node:assert/strict';
import { spawn, spawnSync, type ChildProcess } from 'node:child_process';
import { existsSync, readFileSync, realpathSync } from 'node:fs';
import { mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, describe, test } from 'node:test';
import { split as shellSplit } from 'shlex';
import { AgentIdentity } from '../src/agent/identity.ts';
import { AGENT_STATE_DIR, agentUnitText } from '../src/cli/install/agent-unit.ts';
import { HUB_DATA_DIR, hubUnitText } from '../src/cli/install/hub-unit.ts';
import { programPaths } from '../src/cli/install/program-paths.ts';
import { systemdVersion } from '../src/cli/install/systemd-host.ts';
import { NO_ENGINE } from './support/agent-fixture.ts';
import { mintCode, startTestHub } from './support/hub-fixture.ts';
import { spawnDockfleet } from './support/processes.ts';

const dirs: string[] = [];
after(async () => {
  for (const d of dirs) await rm(d, { recursive: true, force: true });
});
async function scratch(): Promise<string> {
  const dir = await mkdtemp(join(tmpdir(), 'dockfleet-install-'));
  dirs.push(dir);
  return dir;
}

/** `systemd-analyze verify` on one unit file: exit 0, and not a line of output about it. */
function assertVerifies(path: string): void {
  const res = spawnSync('systemd-analyze', ['verify', path], { encoding: 'utf8' });
  assert.equal(res.error, undefined, 'systemd-analyze is needed');
  const name = path.split('/').pop()!;
  const about = `${res.stdout}\n${res.stderr}`.split('\n').filter((l) => l.includes(name) || l.includes(path));
  assert.deepEqual(about, [], `systemd-analyze verify ${path} said:\n${res.stdout}${res.stderr}`);
  assert.equal(res.status, 0, `systemd-analyze verify ${path} exited ${res.status}:\n${res.stdout}${res.stderr}`);
}

/** Resolves when the child prints a stdout line matching `re`. */
function lineFrom(child: ChildProcess, re: RegExp, ms: number): Promise<void> {
  let out = '';
  let err = '';
  child.stderr!.on('data', (c: Buffer) => (err += c.toString()));
  return new Promise((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error(`no ${re} within ${ms} ms; stdout: ${out} stderr: ${err.slice(-800)}`)), ms);
    child.stdout!.on('data', (c: Buffer) => {
      out += c.toString();
      if (re.test(out)) {
        clearTimeout(timer);
        resolve();
      }
    });
    child.once('exit', (code) => {
      clearTimeout(timer);
      reject(new Error(`exited ${code} before ${re}; stderr: ${err.slice(-800)}`));
    });
  });
}

/** Stops a child this test started, by its pid. */
async function stopChild(child: ChildProcess): Promise<void> {
  if (child.exitCode !== null || child.signalCode !== null) return;
  const exited = new Promise((r) => child.once('exit', r));
  child.kill('SIGTERM');
  const timer = setTimeout(() => child.kill('SIGKILL'), 5_000);
  await exited;
  clearTimeout(timer);
}

/** KEY=VALUE lines of a unit, comments dropped. */
function directives(text: string): Array<[string, string]> {
  return text
    .split('\n')
    .filter((l) => /^[A-Za-z]+=/.test(l))
    .map((l) => {
      const i = l.indexOf('=');
      return [l.slice(0, i), l.slice(i + 1)];
    });
}
const directiveValue = (text: string, key: string): string | undefined => directives(text).find(([k]) => k === key)?.[1];

const HARDENING: Record<string, string | RegExp> = {
  NoNewPrivileges: 'yes',
  ProtectSystem: 'strict',
  ProtectHome: 'yes',
  PrivateTmp: 'yes',
  PrivateDevices: 'yes',
  ProtectKernelTunables: 'yes',
  ProtectKernelModules: 'yes',
  ProtectKernelLogs: 'yes',
  ProtectControlGroups: 'yes',
  RestrictAddressFamilies: /^AF_UNIX AF_INET AF_INET6( AF_NETLINK)?$/,
  RestrictNamespaces: 'yes',
  LockPersonality: 'yes',
  RestrictRealtime: 'yes',
  RestrictSUIDSGID: 'yes',
  SystemCallArchitectures: 'native',
  SystemCallFilter: '@system-service',
  Restart: 'on-failure',
  RestartSec: '5s',
  UMask: '0077',
};

function assertHardened(text: string): void {
  for (const [key, want] of Object.entries(HARDENING)) {
    const got = directiveValue(text, key);
    assert.ok(got !== undefined, `${key}= is in the unit`);
    if (typeof want === 'string') assert.equal(got, want, key);
    else assert.match(got, want, key);
  }
  assert.ok(
    directives(text).some(([k]) => k === 'CapabilityBoundingSet'),
    'a capability bounding set',
  );
  // Every directive has its reason written above it.
  const lines = text.split('\n');
  lines.forEach((l, i) => {
    if (/^[A-Za-z]+=/.test(l)) assert.match(lines[i - 1] ?? '', /^# /, `a comment explains ${l}`);
  });
}

describe('installed as systemd services', { timeout: 180_000 }, () => {
  test('the default units (state in StateDirectory) verify cleanly and carry the hardening', async () => {
    const dir = await scratch();
    const common = { programs: programPaths(), logLevel: null, systemdVersion: await systemdVersion() };
    const agent = agentUnitText({
      ...common,
      hubUrl: 'https://hub.example:7443',
      stateDir: AGENT_STATE_DIR,
      dockerHost: 'unix:///var/run/docker.sock',
      policyFile: null,
      dockerRoot: '/var/lib/docker',
      backupPaths: ['/srv/backups'],
    });
    const hub = hubUnitText({ ...common, dataDir: HUB_DATA_DIR, masterKeyFile: `${HUB_DATA_DIR}.master.key`, listen: [{ flag: 'listen', value: '0.0.0.0:443' }] });
    for (const [name, text] of [
      ['dockfleet-agent.service', agent],
      ['dockfleet-hub.service', hub],
    ] as const) {
      const path = join(dir, name);
      await writeFile(path, text);
      assertVerifies(path);
      assertHardened(text);
    }
    assert.equal(directiveValue(agent, 'StateDirectory'), 'dockfleet-agent');
    assert.match(directiveValue(agent, 'ExecStart')!, / agent --hub https:\/\/hub\.example:7443 --state \/var\/lib\/dockfleet-agent /);
    assert.match(directiveValue(agent, 'ExecStart')!, /^\/\S+\/node \/\S+\/bin\/dockfleet\.js /, 'absolute node and dockfleet paths');
    assert.equal(directiveValue(agent, 'RestrictAddressFamilies'), 'AF_UNIX AF_INET AF_INET6 AF_NETLINK');
    assert.ok(directives(agent).some(([k, v]) => k === 'ReadWritePaths' && v === '-/var/lib/docker/volumes'));
    assert.ok(
      directives(agent).some(([k, v]) => k === 'ReadWritePaths' && v === '-/srv/backups'),
      "the policy's backup repositories stay writable",
    );
    assert.equal(directiveValue(hub, 'StateDirectory'), 'dockfleet-hub');
    assert.equal(directiveValue(hub, 'CapabilityBoundingSet'), 'CAP_NET_BIND_SERVICE', 'port 443 needs exactly this');
    const hubOnHighPort = hubUnitText({ ...common, dataDir: HUB_DATA_DIR, masterKeyFile: `${HUB_DATA_DIR}.master.key`, listen: [] });
    assert.equal(directiveValue(hubOnHighPort, 'CapabilityBoundingSet'), '', 'no capability at all on 7443');
  });

  test('agent install enrolls once, writes a unit without the code, whose ExecStart connects the agent; uninstall removes it', async () => {
    const hub = await startTestHub();
    const dir = await scratch();
    const units = join(dir, 'units');
    const state = join(dir, 'state');
    const code = await mintCode(hub, 'svc-node');
    let agent: ChildProcess | null = null;
    try {
      const install = spawnDockfleet(['agent', 'install', '--hub', hub.url, '--code', code, '--unit-dir', units, '--state', state, '--docker', NO_ENGINE, '--policy', join(state, 'no-policy.json')]);
      const { code: exit } = await install.exited;
      assert.equal(exit, 0, `install exits 0: ${install.stderr()}`);
      assert.match(install.stdout(), /enrolled as svc-node/);
      assert.match(install.stdout(), /nothing was started/, 'no systemd manages --unit-dir: it says so');
      assert.match(install.stdout(), /systemctl daemon-reload && systemctl enable --now dockfleet-agent\.service/, 'and says what to run');
      const identity = await AgentIdentity.load(state);
      assert.equal(identity?.node, 'svc-node', 'an enrolled identity is in the state dir');

      const unitPath = join(units, 'dockfleet-agent.service');
      const text = await readFile(unitPath, 'utf8');
      assert.ok(!text.includes(code), 'the enrollment code is nowhere in the unit');
      assert.doesNotMatch(text, /--code/);
      assertVerifies(unitPath);
      assertHardened(text);
      assert.ok(
        directives(text).some(([k, v]) => k === 'ReadWritePaths' && v === state),
        'a --state outside /var/lib is made writable',
      );

      // The unit's own command line, by hand: the agent comes up on the enrolled identity alone.
      const argv = shellSplit(directiveValue(text, 'ExecStart')!);
      assert.equal(argv[0], realpathSync(process.execPath), 'absolute node');
      assert.equal(argv[1], programPaths().dockfleet, 'absolute dockfleet');
      agent = spawn(argv[0]!, argv.slice(1), { stdio: ['ignore', 'pipe', 'pipe'] });
      await lineFrom(agent, /agent svc-node connected/, 60_000);
      await stopChild(agent);

      const uninstall = spawnDockfleet(['agent', 'uninstall', '--unit-dir', units]);
      assert.equal((await uninstall.exited).code, 0, uninstall.stderr());
      assert.match(uninstall.stdout(), /removed .*dockfleet-agent\.service/);
      assert.ok(!existsSync(unitPath), 'the unit is gone');
      assert.ok(await AgentIdentity.load(state), 'the state dir stays without --purge');
    } finally {
      if (agent) await stopChild(agent);
      await hub.stop();
    }
  });

  test('hub install with --data elsewhere: the master key is made beside it, both writable; verify passes; uninstall removes the unit', async () => {
    const dir = await scratch();
    const units = join(dir, 'units');
    const data = join(dir, 'hub-data');
    const install = spawnDockfleet(['hub', 'install', '--data', data, '--listen', '127.0.0.1:7443', '--log-level', 'warn', '--unit-dir', units]);
    assert.equal((await install.exited).code, 0, install.stderr());
    const unitPath = join(units, 'dockfleet-hub.service');
    const text = readFileSync(unitPath, 'utf8');
    assertVerifies(unitPath);
    assertHardened(text);
    assert.ok(existsSync(`${data}.master.key`), 'the master key exists before the first start');
    const writable = directives(text)
      .filter(([k]) => k === 'ReadWritePaths')
      .map(([, v]) => v);
    assert.deepEqual(writable, [data, `-${data}.master.key`]);
    assert.match(directiveValue(text, 'ExecStart')!, new RegExp(` hub --data ${data} --listen 127\\.0\\.0\\.1:7443 --log-level warn$`));
    const uninstall = spawnDockfleet(['hub', 'uninstall', '--unit-dir', units]);
    assert.equal((await uninstall.exited).code, 0, uninstall.stderr());
    assert.ok(!existsSync(unitPath));
    assert.ok(existsSync(data), 'the data stays without --purge');
  });

  test('where systemd is PID 1, the installed agent really runs as a service', async (t) => {
    const pid1 = readFileSync('/proc/1/comm', 'utf8').trim();
    if (pid1 !== 'systemd' || !existsSync('/run/systemd/system')) {
      t.skip(`PID 1 here is "${pid1}", not systemd: the unit is verified above and its ExecStart run by hand`);
      return;
    }
    const hub = await startTestHub();
    try {
      const code = await mintCode(hub, 'systemd-node');
      const install = spawnDockfleet(['agent', 'install', '--hub', hub.url, '--code', code, '--docker', NO_ENGINE]);
      assert.equal((await install.exited).code, 0, install.stderr());
      const deadline = Date.now() + 60_000;
      for (;;) {
        const nodes = await hub.api('GET', '/api/v1/nodes');
        if ((nodes.json as Array<{ name: string; status: string }>).some((n) => n.name === 'systemd-node' && n.status === 'online')) break;
        assert.ok(Date.now() < deadline, 'the service agent comes online');
        await new Promise((r) => setTimeout(r, 500));
      }
    } finally {
      spawnSync(process.execPath, [programPaths().dockfleet, 'agent', 'uninstall', '--purge']);
      await hub.stop();
    }
  });
});
