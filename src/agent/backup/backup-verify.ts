/**
 * Proof that a backup restores (issue 14, item 5): the latest snapshot of a volume is restored
 * with restic into a scratch directory in the agent's state dir (never into the live volume)
 * and checked against the snapshot's own listing (`restic ls --json`): every entry present with
 * its type, every file with its size and permission bits, nothing extra; and every file's
 * restored bytes hashed (SHA-256) against a second, independent read of the same snapshot
 * (`restic dump SNAPSHOT /`, a tar stream). The scratch directory is removed whatever happens.
 * A missing or damaged pack in the repository fails the restore or the dump: "not verified",
 * with restic's reason.
 */
import { spawn } from 'node:child_process';
import { createHash, randomBytes } from 'node:crypto';
import { createReadStream } from 'node:fs';
import { lstat, mkdir, readdir, rm } from 'node:fs/promises';
import { join } from 'node:path';
import { pipeline } from 'node:stream/promises';
import { extract } from 'tar-stream';
import type { VerifyOutcome, VolumeBackupPolicy } from '../../protocol/volume-backup.ts';
import type { BackupsPolicy } from '../policy/policy-file.ts';
import type { StackEngine } from '../stacks/stack-engine.ts';
import { BackupKeys } from './backup-keys.ts';
import { resolveRepository } from './backup-repository.ts';
import { inRepoTurn } from './repo-turns.ts';
import { backendEnv, explain, restic, RESTIC_BIN } from './restic-runner.ts';

export const SCRATCH_DIR = 'backup-verify';
/** A listing longer than this is not verified here (it says so). */
const MAX_ENTRIES = 2_000_000;
/** At most this many differences are named in the detail. */
const MAX_NAMED = 5;

interface ListedNode {
  path: string;
  type: string;
  size: number | null;
  mode: number;
}

export interface VerifyDeps {
  node: string;
  stateDir: string;
  engine: StackEngine;
  policy: () => BackupsPolicy | null | undefined;
}

class NotVerified extends Error {}

export class BackupVerifier {
  readonly #deps: VerifyDeps;
  readonly #keys: BackupKeys;

  constructor(deps: VerifyDeps) {
    this.#deps = deps;
    this.#keys = new BackupKeys(deps.stateDir);
  }

  /** `env`: what the hub keeps for the policy (its hub-managed password, a URL repository's credentials), opened for this run only. */
  async verify(policy: VolumeBackupPolicy, signal: AbortSignal, env: Readonly<Record<string, string>> = {}): Promise<VerifyOutcome> {
    const started = Date.now();
    const outcome = (ok: boolean, detail: string, snapshot: string | null, files = 0, bytes = 0): VerifyOutcome => ({
      at: Date.now(),
      ok,
      snapshot,
      files,
      bytes,
      durationMs: Date.now() - started,
      detail: detail.slice(0, 2_000),
    });
    let snapshot: string | null = null;
    const scratch = join(this.#deps.stateDir, SCRATCH_DIR, `${policy.volume}-${randomBytes(6).toString('hex')}`);
    try {
      const backups = this.#deps.policy();
      if (!backups) throw new NotVerified("this host's policy has no backups section");
      const info = (await this.#deps.engine.must('GET', '/info')) as { DockerRootDir?: unknown };
      const repo = await resolveRepository(policy.repository, backups, { dataRoot: typeof info?.DockerRootDir === 'string' ? info.DockerRootDir : null, stateDir: this.#deps.stateDir });
      const key = await this.#keys.password(repo.label, backups.custody, { hubPassword: env.RESTIC_PASSWORD, mayCreate: false });
      if (!key) throw new NotVerified(`this host holds no key for ${repo.label}`);
      const home = join(this.#deps.stateDir, 'restic-home');
      await mkdir(home, { recursive: true, mode: 0o700 });
      const call = { repo: repo.repo, options: repo.options, password: key.password, env: { ...env }, cacheDir: home, signal };
      const tags = ['--host', this.#deps.node, '--tag', `node=${this.#deps.node},volume=${policy.volume}`];
      const listed = await restic({ ...call, args: ['snapshots', '--json', '--latest', '1', ...tags] });
      const latest = (JSON.parse(listed.stdout.trim() || '[]') as Array<{ id?: unknown; time?: unknown }>).sort((a, b) => String(a.time).localeCompare(String(b.time))).at(-1);
      if (typeof latest?.id !== 'string') throw new NotVerified(`there is no snapshot of ${policy.volume} in ${repo.label} to verify`);
      snapshot = latest.id;
      const entries = await this.#listing(call, snapshot);
      await mkdir(scratch, { recursive: true, mode: 0o700 });
      await restic({ ...call, args: ['restore', snapshot, '--target', scratch] });
      const differences = await compareTree(scratch, entries);
      const sums = await inRepoTurn(call.repo, 'shared', () => this.#dumpHashes(call, latest.id as string));
      let bytes = 0;
      let files = 0;
      for (const entry of entries) {
        if (entry.type !== 'file') continue;
        files++;
        bytes += entry.size ?? 0;
        const expected = sums.get(entry.path);
        if (expected === undefined) differences.push(`${entry.path}: not in the snapshot's dump`);
        else if (differences.length < 1_000 && (await sha256Of(join(scratch, entry.path))) !== expected) differences.push(`${entry.path}: restored bytes differ from the snapshot's (SHA-256)`);
      }
      if (differences.length > 0) {
        return outcome(
          false,
          `${differences.length} difference${differences.length > 1 ? 's' : ''} from the snapshot's listing: ${differences.slice(0, MAX_NAMED).join('; ')}`,
          snapshot,
          files,
          bytes,
        );
      }
      return outcome(true, 'verified', snapshot, files, bytes);
    } catch (err) {
      return outcome(false, `not verified: ${(err as Error).message ?? String(err)}`, snapshot);
    } finally {
      await rm(scratch, { recursive: true, force: true }).catch(() => {});
    }
  }

  async #listing(call: Omit<Parameters<typeof restic>[0], 'args'>, snapshot: string): Promise<ListedNode[]> {
    const entries: ListedNode[] = [];
    let tooMany = false;
    await restic({
      ...call,
      args: ['ls', '--json', snapshot],
      onJson: (value) => {
        const v = value as Record<string, unknown>;
        if (v.struct_type !== 'node' || typeof v.path !== 'string') return;
        if (entries.length >= MAX_ENTRIES) tooMany = true;
        else entries.push({ path: v.path, type: String(v.type), size: typeof v.size === 'number' ? v.size : null, mode: Number(v.mode ?? 0) });
      },
    });
    if (tooMany) throw new NotVerified(`the snapshot lists more than ${MAX_ENTRIES} entries`);
    return entries;
  }

  /** SHA-256 of every regular file in `restic dump SNAPSHOT /` (a tar of the snapshot), by listing path. */
  async #dumpHashes(call: { repo: string; options: string[]; password: string; env: Record<string, string>; cacheDir: string; signal: AbortSignal }, snapshot: string): Promise<Map<string, string>> {
    const child = spawn(RESTIC_BIN, ['--no-cache', ...call.options, 'dump', snapshot, '/'], {
      env: { PATH: process.env.PATH ?? '/usr/bin:/bin', HOME: call.cacheDir, RESTIC_CACHE_DIR: call.cacheDir, ...backendEnv(call.env), RESTIC_REPOSITORY: call.repo, RESTIC_PASSWORD: call.password },
      stdio: ['ignore', 'pipe', 'pipe'],
      signal: call.signal,
      killSignal: 'SIGINT',
    });
    let stderr = '';
    child.stderr.on('data', (chunk: Buffer) => {
      if (stderr.length < 16_384) stderr += chunk.toString('utf8');
    });
    const exited = new Promise<number>((resolve, reject) => {
      child.once('error', reject);
      child.once('close', (code) => resolve(code ?? -1));
    });
    const sums = new Map<string, string>();
    const tar = extract();
    tar.on('entry', (header, stream, next) => {
      if (header.type !== 'file') {
        stream.resume();
        stream.once('end', next);
        return;
      }
      const hash = createHash('sha256');
      stream.on('data', (chunk: unknown) => {
        hash.update(chunk as Buffer);
      });
      stream.once('end', () => {
        sums.set(`/${header.name.replace(/^\.?\/+/, '')}`, hash.digest('hex'));
        next();
      });
    });
    const read = pipeline(child.stdout, tar).catch((err: unknown) => err as Error);
    const [code, readError] = await Promise.all([exited, read]);
    if (code !== 0) throw explain(stderr, code);
    if (readError) throw new NotVerified(`the snapshot's dump could not be read as tar: ${readError.message}`);
    return sums;
  }
}

/** Each listed entry against the restored tree; then anything restored that the listing lacks. */
async function compareTree(root: string, entries: ListedNode[]): Promise<string[]> {
  const differences: string[] = [];
  const listed = new Set<string>();
  for (const entry of entries) {
    listed.add(entry.path);
    const st = await lstat(join(root, entry.path)).catch(() => null);
    if (!st) {
      differences.push(`${entry.path}: missing`);
      continue;
    }
    const type = st.isFile() ? 'file' : st.isDirectory() ? 'dir' : st.isSymbolicLink() ? 'symlink' : 'other';
    if (type !== entry.type && !(entry.type !== 'file' && entry.type !== 'dir' && entry.type !== 'symlink')) {
      differences.push(`${entry.path}: a ${type}, listed as a ${entry.type}`);
      continue;
    }
    if (entry.type === 'file' && st.size !== entry.size) differences.push(`${entry.path}: ${st.size} bytes, listed with ${entry.size ?? '?'}`);
    if (entry.type !== 'symlink' && (st.mode & 0o777) !== (entry.mode & 0o777)) {
      differences.push(`${entry.path}: mode ${(st.mode & 0o777).toString(8)}, listed as ${(entry.mode & 0o777).toString(8)}`);
    }
  }
  const walk = async (rel: string): Promise<void> => {
    for (const d of await readdir(join(root, rel), { withFileTypes: true })) {
      const path = `${rel}/${d.name}`;
      if (!listed.has(path)) differences.push(`${path}: restored, and not in the listing`);
      if (d.isDirectory()) await walk(path);
    }
  };
  await walk('');
  return differences;
}

async function sha256Of(path: string): Promise<string> {
  const hash = createHash('sha256');
  for await (const chunk of createReadStream(path)) hash.update(chunk as Buffer);
  return hash.digest('hex');
}
