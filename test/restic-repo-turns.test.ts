/**
 * Runs at one restic repository take turns (src/agent/backup/repo-turns.ts): this agent's
 * retention (`forget --prune`, which holds the repository alone) and backups of other volumes
 * into the same repository no longer fail each other with "repository is already locked"; and a
 * lock another restic process holds (a `rebuild-index`, which holds it alone) is waited out. Debian's
 * real restic on a path repository.
 */
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { existsSync } from 'node:fs';
import { mkdir, mkdtemp, readdir, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, test } from 'node:test';
import { restic, RESTIC_BIN } from '../src/agent/backup/restic-runner.ts';

const CI = process.env.CI === 'true';
const PASSWORD = 'turns-test-password';
let dir = '';
let repo = '';

const call = (args: string[], cwd?: string) => restic({ repo, password: PASSWORD, cacheDir: join(dir, 'cache'), args, ...(cwd ? { cwd } : {}) });

describe('restic runs take turns at a repository', { skip: !CI && !existsSync(RESTIC_BIN) ? 'restic is not installed' : false }, () => {
  before(async () => {
    dir = await mkdtemp(join(tmpdir(), 'dockfleet-turns-'));
    repo = join(dir, 'repo');
    await call(['init']);
    for (const v of ['a', 'b', 'c']) {
      await mkdir(join(dir, v));
      await writeFile(join(dir, v, 'data.bin'), randomBytes(256 * 1024));
    }
  });

  after(async () => {
    if (dir) await rm(dir, { recursive: true, force: true });
  });

  test('retention on one volume and backups of others at once: every run succeeds', async () => {
    const runs: Array<Promise<unknown>> = [];
    for (let round = 0; round < 4; round++) {
      for (const v of ['a', 'b', 'c']) {
        await writeFile(join(dir, v, `r${round}.bin`), randomBytes(64 * 1024));
        runs.push(call(['backup', '--json', '--tag', `volume=${v}`, '.'], join(dir, v)));
      }
      runs.push(call(['forget', '--prune', '--tag', 'volume=a', '--keep-last', '1']));
    }
    const outcomes = await Promise.allSettled(runs);
    const failed = outcomes.filter((o) => o.status === 'rejected').map((o) => String((o as PromiseRejectedResult).reason?.message));
    assert.deepEqual(failed, []);
    const listed = JSON.parse((await call(['snapshots', '--json'])).stdout) as Array<{ tags: string[] }>;
    assert.equal(listed.filter((s) => s.tags.includes('volume=a')).length, 1, 'retention kept one of volume a');
    assert.equal(listed.filter((s) => s.tags.includes('volume=b')).length, 4);
  });

  test('a lock another restic process holds is waited out, not failed on', async () => {
    // Another restic holds the repository alone (`rebuild-index`) and is paused while it does:
    // its lock stays fresh, as a long prune's would.
    await writeFile(join(dir, 'c', 'big.bin'), randomBytes(16 * 1024 * 1024));
    await call(['backup', '--tag', 'volume=c', '.'], join(dir, 'c'));
    const other = spawn(RESTIC_BIN, ['--no-cache', 'rebuild-index', '--read-all-packs'], { env: { PATH: process.env.PATH, RESTIC_REPOSITORY: repo, RESTIC_PASSWORD: PASSWORD }, stdio: 'ignore' });
    const otherDone = new Promise<number | null>((r) => other.once('close', r));
    try {
      const deadline = Date.now() + 10_000;
      while ((await readdir(join(repo, 'locks')).catch(() => [])).length === 0 && Date.now() < deadline) await new Promise((r) => setTimeout(r, 5));
      other.kill('SIGSTOP');
      assert.equal(other.exitCode, null, 'the other process holds its lock');
      const backup = call(['backup', '--tag', 'volume=b', '.'], join(dir, 'b'));
      await new Promise((r) => setTimeout(r, 3_000));
      other.kill('SIGCONT');
      await backup;
      assert.equal(await otherDone, 0, "the other process's rebuild-index passed");
    } finally {
      if (other.exitCode === null) {
        other.kill('SIGCONT');
        other.kill('SIGKILL');
      }
    }
  });
});
