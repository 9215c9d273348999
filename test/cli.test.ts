/** The `dockfleet` command as scripts use it: output lines, JSON shapes, exit codes, and
 * one-line errors, through real processes against a real hub. */
import assert from 'node:assert/strict';
import { mkdtemp, readFile, stat } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, test } from 'node:test';
import { freePort, spawnDockfleet, type DockfleetProcess } from './support/processes.ts';
import { NO_ENGINE } from './support/agent-fixture.ts';
import { removeHubData } from './support/hub-fixture.ts';

let dataDir: string;
let hub: DockfleetProcess;
let hubUrl: string;
const running: DockfleetProcess[] = [];

async function cli(...args: string[]): Promise<{ code: number | null; stdout: string; stderr: string }> {
  const p = spawnDockfleet(args, { DOCKFLEET_HUB: undefined, DOCKFLEET_TOKEN: undefined });
  const { code } = await p.exited;
  return { code, stdout: p.stdout(), stderr: p.stderr() };
}

before(async () => {
  dataDir = await mkdtemp(join(tmpdir(), 'dockfleet-cli-'));
  hub = spawnDockfleet(['hub', '--data', dataDir, '--listen', `127.0.0.1:${await freePort()}`]);
  hubUrl = (await hub.waitForLine(/hub ready/)).match(/https:\/\/\S+/)![0];
});
after(async () => {
  for (const p of running) await p.stop();
  await hub.stop();
  await removeHubData(dataDir);
});

test('the hub prepares its data dir: private CA, database, admin.token (0600)', async () => {
  assert.equal((await stat(join(dataDir, 'admin.token'))).mode & 0o777, 0o600);
  assert.equal((await stat(join(dataDir, 'dockfleet.db'))).mode & 0o777, 0o600);
  assert.match(await readFile(join(dataDir, 'pki', 'ca.pem'), 'utf8'), /BEGIN CERTIFICATE/);
  const health = await fetch(`${hubUrl}/healthz`).catch((e: Error) => e);
  assert.ok(health instanceof Error, 'a client that does not trust the private CA is refused');
});

test('enroll prints the code alone on the last line; an agent uses it and prints "agent NAME connected"', async () => {
  const enroll = await cli('enroll', 'cli-node', '--data', dataDir);
  assert.equal(enroll.code, 0, enroll.stderr);
  const code = enroll.stdout.trimEnd().split('\n').at(-1)!;
  assert.match(code, /^DFE1-[0-9a-f]{64}-[0-9a-f]{32}$/);
  const agent = spawnDockfleet(['agent', '--hub', hubUrl, '--code', code, '--state', join(dataDir, 'agent-cli'), '--docker', NO_ENGINE]);
  running.push(agent);
  await agent.waitForLine(/^agent cli-node connected$/);
  assert.ok(!agent.stderr().includes(code.split('-')[2]!), 'the code secret never reaches the logs');
});

test('nodes --json is an array of {name, status, lastSeen, engine:{version}}', async () => {
  const res = await cli('nodes', '--json', '--data', dataDir);
  assert.equal(res.code, 0, res.stderr);
  const nodes = JSON.parse(res.stdout);
  assert.ok(Array.isArray(nodes));
  const node = nodes.find((n: { name: string }) => n.name === 'cli-node');
  assert.equal(node.status, 'online');
  assert.ok(!Number.isNaN(Date.parse(node.lastSeen)));
  assert.ok('version' in node.engine);
  const table = await cli('nodes', '--data', dataDir);
  assert.match(table.stdout, /^NAME\s+STATUS/);
  assert.match(table.stdout, /cli-node\s+online/);
});

test('--hub/--token/--ca and the DOCKFLEET_* variables reach the hub as --data does', async () => {
  const token = (await readFile(join(dataDir, 'admin.token'), 'utf8')).trim();
  const ca = join(dataDir, 'pki', 'ca.pem');
  const flags = await cli('nodes', '--json', '--hub', hubUrl, '--token', token, '--ca', ca);
  assert.equal(flags.code, 0, flags.stderr);
  const p = spawnDockfleet(['nodes', '--json'], { DOCKFLEET_HUB: hubUrl, DOCKFLEET_TOKEN: token, DOCKFLEET_CA: ca });
  assert.equal((await p.exited).code, 0, p.stderr());
  assert.deepEqual(
    JSON.parse(p.stdout()).map((n: { name: string }) => n.name),
    JSON.parse(flags.stdout).map((n: { name: string }) => n.name),
  );
  const wrong = await cli('nodes', '--hub', hubUrl, '--token', 'dft_not-a-real-token-at-all', '--ca', ca);
  assert.equal(wrong.code, 1);
  assert.equal(wrong.stderr.trim().split('\n').length, 1);
  assert.match(wrong.stderr, /\[unauthenticated\]/);
});

test('join-token, approve, rotate and revoke through the CLI', async () => {
  const token = (await cli('join-token', '--data', dataDir)).stdout.trimEnd().split('\n').at(-1)!;
  assert.match(token, /^DFJ1-/);
  const agent = spawnDockfleet(['agent', '--hub', hubUrl, '--code', token, '--name', 'joiner', '--state', join(dataDir, 'agent-joiner'), '--docker', NO_ENGINE]);
  running.push(agent);
  await agent.waitForLine(/^agent joiner pending approval$/);
  assert.equal((await cli('approve', 'joiner', '--data', dataDir)).stdout.trim(), 'node joiner approved');
  await agent.waitForLine(/^agent joiner connected$/, 5_000);
  const rotate = await cli('rotate', 'joiner', '--data', dataDir);
  assert.equal(rotate.code, 0, rotate.stderr);
  assert.equal(agent.stdout().match(/connected/g)?.length, 1, 'rotation without reconnecting');
  const revoke = await cli('revoke', 'joiner', '--data', dataDir);
  assert.equal(revoke.code, 0, revoke.stderr);
  const exit = await agent.exited;
  assert.notEqual(exit.code, 0, 'a revoked agent stops with an error');
  assert.match(agent.stderr(), /revoked/);
});

test('failures are one line on stderr with a non-zero status; --help works for every command', async () => {
  const cases: Array<[string[], RegExp, number]> = [
    [['enroll', 'cli-node', '--data', dataDir], /\[name_taken\]/, 1],
    [['revoke', 'ghost', '--data', dataDir], /\[node_not_found\]/, 1],
    [['enroll', '--data', dataDir], /exactly one NAME/, 2],
    [['nodes', '--bogus'], /Unknown option/i, 2],
    [['frobnicate'], /unknown command/, 2],
    [['hub', '--listen', 'nonsense'], /HOST:PORT/, 1],
    [['agent', '--hub', hubUrl, '--state', join(dataDir, 'never'), '--docker', NO_ENGINE], /pass --code/, 1],
    [['agent', '--hub', hubUrl, '--code', `DFE1-${'0'.repeat(64)}-${'1'.repeat(32)}`, '--state', join(dataDir, 'never'), '--docker', NO_ENGINE], /does not match|hub_untrusted/, 1],
    [['nodes', '--data', join(dataDir, 'nowhere')], /cannot read/, 1],
  ];
  for (const [args, pattern, status] of cases) {
    const res = await cli(...args);
    assert.equal(res.code, status, `${args.join(' ')}: ${res.stderr}`);
    assert.equal(res.stderr.trim().split('\n').length, 1, `${args.join(' ')} printed: ${res.stderr}`);
    assert.match(res.stderr, pattern);
  }
  for (const command of ['hub', 'agent', 'enroll', 'join-token', 'approve', 'nodes', 'revoke', 'rotate', 'start']) {
    const res = await cli(command, '--help');
    assert.equal(res.code, 0);
    assert.match(res.stdout, new RegExp(`^dockfleet ${command}`));
  }
});
