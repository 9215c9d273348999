/** A damaged --state dir stops the agent with one line that names the file, says what to do,
 * and carries a [code] — never an OpenSSL decoder message or a bare JSON parse position. */
import assert from 'node:assert/strict';
import { cp, mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, test } from 'node:test';
import { mintCode, startTestHub, type TestHub } from './support/hub-fixture.ts';
import { startTestAgent, NO_ENGINE } from './support/agent-fixture.ts';
import { spawnDockfleet } from './support/processes.ts';

let hub: TestHub;
let enrolled: string;
let scratch: string;

before(async () => {
  hub = await startTestHub();
  scratch = await mkdtemp(join(tmpdir(), 'dockfleet-state-'));
  enrolled = join(scratch, 'good');
  const agent = await startTestAgent({ hubUrl: hub.url, code: await mintCode(hub, 'damaged'), stateDir: enrolled });
  await agent.waitConnected();
  await agent.stop();
});
after(async () => {
  await hub.stop();
  await rm(scratch, { recursive: true, force: true });
});

/** Copies the enrolled state, damages one file, starts the real CLI on it. */
async function startOn(damage: (dir: string) => Promise<void>): Promise<{ code: number | null; stderr: string; dir: string }> {
  const dir = await mkdtemp(join(scratch, 'copy-'));
  await cp(enrolled, dir, { recursive: true });
  await damage(dir);
  const p = spawnDockfleet(['agent', '--state', dir, '--docker', NO_ENGINE, '--policy', join(dir, 'no-policy.json')]);
  const { code } = await p.exited;
  return { code, stderr: p.stderr(), dir };
}

function assertOneClearLine(stderr: string, file: string): void {
  const lines = stderr
    .trim()
    .split('\n')
    .filter((l) => l.startsWith('dockfleet agent:'));
  assert.equal(lines.length, 1, `one error line, got:\n${stderr}`);
  const line = lines[0]!;
  assert.ok(line.includes(file), `names the file ${file}: ${line}`);
  assert.match(line, /\[state_corrupt\]$/);
  assert.match(line, /enroll/i, 'says how to recover');
  assert.doesNotMatch(line, /DECODER|routines|Unexpected (end|token)|position \d+/i, `no decoder or parser internals: ${line}`);
}

test('an empty key.pem names the file and what to do', async () => {
  const r = await startOn((dir) => writeFile(join(dir, 'key.pem'), ''));
  assert.equal(r.code, 1);
  assertOneClearLine(r.stderr, join(r.dir, 'key.pem'));
});

test('a key.pem that is not a private key is refused the same way', async () => {
  const r = await startOn(async (dir) => writeFile(join(dir, 'key.pem'), (await readFile(join(dir, 'key.pem'), 'utf8')).slice(0, 60)));
  assert.equal(r.code, 1);
  assertOneClearLine(r.stderr, join(r.dir, 'key.pem'));
});

test('a truncated identity.json names the file', async () => {
  const r = await startOn(async (dir) => {
    const text = await readFile(join(dir, 'identity.json'), 'utf8');
    await writeFile(join(dir, 'identity.json'), text.slice(0, Math.floor(text.length / 2)));
  });
  assert.equal(r.code, 1);
  assertOneClearLine(r.stderr, join(r.dir, 'identity.json'));
});

test('an identity.json with a wrong shape or a damaged CA names the file', async () => {
  for (const damage of [
    (o: Record<string, unknown>) => ({ ...o, node: 42 }),
    (o: Record<string, unknown>) => ({ ...o, caPem: '-----BEGIN CERTIFICATE-----\nAAAA\n-----END CERTIFICATE-----\n' }),
    (o: Record<string, unknown>) => ({ ...o, hubUrl: 'not a url' }),
  ]) {
    const r = await startOn(async (dir) => {
      const obj = JSON.parse(await readFile(join(dir, 'identity.json'), 'utf8')) as Record<string, unknown>;
      await writeFile(join(dir, 'identity.json'), JSON.stringify(damage(obj)));
    });
    assert.equal(r.code, 1);
    assertOneClearLine(r.stderr, join(r.dir, 'identity.json'));
  }
});

test('a missing key.pem beside an identity is damage too, not a fresh start', async () => {
  const r = await startOn((dir) => rm(join(dir, 'key.pem')));
  assert.equal(r.code, 1);
  assertOneClearLine(r.stderr, join(r.dir, 'key.pem'));
});
