/**
 * Runs Debian's restic (never home-made crypto or chunking) for volume backup jobs: one
 * process per call, the repository password and any URL credentials in its environment (never
 * its arguments), `--json` output read line by line (each line bounded, JSON guarded), its
 * stderr kept bounded for the error, and an AbortSignal that ends it. restic's failures are
 * turned into one sentence a person can act on (wrong password, unreachable, disk full).
 */
import { spawn } from 'node:child_process';
import { createInterface } from 'node:readline';
import { parseJsonLine } from '../../lib/ndjson.ts';
import { inRepoTurn, needsRepoAlone } from './repo-turns.ts';

export const RESTIC_BIN = process.env.DOCKFLEET_RESTIC ?? '/usr/bin/restic';
const MAX_STDERR = 16 * 1024;
const MAX_LINE = 64 * 1024;
/** What is kept of stdout: a snapshot list is one JSON document (about 400 bytes a snapshot). */
const MAX_STDOUT = 8 * 1024 * 1024;

/**
 * The job's secret environment that restic may see: a storage backend's credentials only. Never
 * PATH, LD_*, RESTIC_PASSWORD_COMMAND or anything else that would let the job's filer run a
 * program on this host through restic's environment.
 */
const BACKEND_ENV = /^(AWS_(ACCESS_KEY_ID|SECRET_ACCESS_KEY|SESSION_TOKEN|DEFAULT_REGION|PROFILE)|B2_ACCOUNT_(ID|KEY)|AZURE_ACCOUNT_(NAME|KEY|SAS)|GOOGLE_PROJECT_ID|OS_[A-Z_]+|ST_(AUTH|USER|KEY))$/;

export function backendEnv(env: Readonly<Record<string, string>>): Record<string, string> {
  return Object.fromEntries(Object.entries(env).filter(([name]) => BACKEND_ENV.test(name)));
}

export interface ResticCall {
  repo: string;
  password: string;
  /** Further environment (a URL repository's credentials). */
  env?: Record<string, string>;
  args: string[];
  /** restic's `-o` options for the repository (the hub repository's rclone program). */
  options?: string[];
  signal?: AbortSignal;
  /** Each JSON line restic prints on stdout (with --json). */
  onJson?: (value: unknown) => void;
  cacheDir: string;
  /** Where restic runs (a backup of `.` stores the volume's files at the snapshot's root). */
  cwd?: string;
  /**
   * Ends restic (SIGINT, then SIGKILL) when it has not exited within this time: restic 0.14 waits
   * without limit on a repository server that accepts the connection and never answers.
   */
  timeoutMs?: number;
}

/** How long a call that only opens the repository (cat config, init, snapshots) may take. */
export const OPEN_TIMEOUT_MS = 30_000;

export interface ResticOutcome {
  code: number;
  stdout: string;
  stderr: string;
}

export class ResticError extends Error {
  readonly kind: 'wrong-password' | 'no-repository' | 'unreachable' | 'disk-full' | 'locked' | 'other';
  constructor(kind: ResticError['kind'], message: string) {
    super(message);
    this.kind = kind;
  }
}

/** How long a run waits out a lock another host's restic holds on a shared repository. */
const LOCKED_RETRY_MS = 60_000;
const LOCKED_PAUSE_MS = 2_000;

/**
 * Runs restic; resolves with its output when it exits 0 (or 3: some files unreadable, snapshot
 * made), else throws a ResticError. Runs take turns at their repository with this agent's other
 * runs (repo-turns.ts); a lock held elsewhere is waited out for up to a minute, since a run that
 * meets a lock has changed nothing.
 */
export async function restic(call: ResticCall): Promise<ResticOutcome> {
  const kind = needsRepoAlone(call.args) ? 'exclusive' : 'shared';
  const giveUpAt = Date.now() + LOCKED_RETRY_MS;
  for (;;) {
    try {
      return await inRepoTurn(call.repo, kind, () => runOnce(call));
    } catch (err) {
      if (!(err instanceof ResticError && err.kind === 'locked') || Date.now() >= giveUpAt || call.signal?.aborted) throw err;
    }
    await new Promise((r) => setTimeout(r, LOCKED_PAUSE_MS));
  }
}

function runOnce(call: ResticCall): Promise<ResticOutcome> {
  return new Promise((resolve, reject) => {
    const child = spawn(RESTIC_BIN, ['--no-cache', ...(call.options ?? []), ...call.args], {
      env: {
        PATH: process.env.PATH ?? '/usr/bin:/bin',
        HOME: call.cacheDir,
        RESTIC_CACHE_DIR: call.cacheDir,
        ...backendEnv(call.env ?? {}),
        RESTIC_REPOSITORY: call.repo,
        RESTIC_PASSWORD: call.password,
      },
      stdio: ['ignore', 'pipe', 'pipe'],
      ...(call.cwd ? { cwd: call.cwd } : {}),
      ...(call.signal ? { signal: call.signal, killSignal: 'SIGINT' as const } : {}),
    });
    let stdout = '';
    let stderr = '';
    let timedOut = false;
    const timer =
      call.timeoutMs === undefined
        ? null
        : setTimeout(() => {
            timedOut = true;
            child.kill('SIGINT');
            setTimeout(() => child.kill('SIGKILL'), 5_000).unref();
          }, call.timeoutMs);
    const lines = call.onJson ? createInterface({ input: child.stdout }) : null;
    const onJson = call.onJson;
    if (lines && onJson) {
      // Progress lines: each bounded and parsed alone; only the last few are kept.
      lines.on('line', (line) => {
        const text = line.length > MAX_LINE ? line.slice(0, MAX_LINE) : line;
        stdout = `${stdout}${text}\n`.slice(-MAX_STDERR);
        const parsed = parseJsonLine(text);
        if (parsed.ok) onJson(parsed.value);
      });
    } else {
      child.stdout.on('data', (chunk: Buffer) => {
        if (stdout.length < MAX_STDOUT) stdout += chunk.toString('utf8');
      });
    }
    child.stderr.on('data', (chunk: Buffer) => {
      if (stderr.length < MAX_STDERR) stderr += chunk.toString('utf8').slice(0, MAX_STDERR - stderr.length);
    });
    child.on('error', (err) => {
      if ((err as NodeJS.ErrnoException).code === 'ENOENT') reject(new ResticError('other', `restic is not installed at ${RESTIC_BIN} (apt install restic)`));
      else if (err.name === 'AbortError') reject(new ResticError('other', 'restic was stopped (the agent is stopping)'));
      else reject(new ResticError('other', `restic could not run: ${err.message}`));
    });
    child.on('close', (code) => {
      lines?.close();
      if (timer) clearTimeout(timer);
      if (timedOut) {
        reject(new ResticError('unreachable', `the repository did not answer within ${Math.round(call.timeoutMs! / 1000)} s, so restic was stopped (restic: ${lastLines(stderr) || 'no message'})`));
        return;
      }
      const exit = code ?? -1;
      if (exit === 0 || exit === 3) resolve({ code: exit, stdout, stderr });
      else reject(explain(stderr, exit));
    });
  });
}

/** restic's stderr in one sentence, with its own words kept at the end. */
export function explain(stderr: string, code: number): ResticError {
  const said = lastLines(stderr);
  if (/wrong password|no key found/i.test(stderr)) return new ResticError('wrong-password', `the repository's password is wrong (restic: ${said})`);
  if (/no space left on device|disk quota exceeded/i.test(stderr)) return new ResticError('disk-full', `the disk is full (restic: ${said})`);
  // Before 'no repository': restic says "unable to open config file" also when the server is not there at all.
  if (/connection refused|no such host|timeout|network is unreachable|dial tcp|permission denied|read-only file system/i.test(stderr)) {
    return new ResticError('unreachable', `the repository cannot be reached or written (restic: ${said})`);
  }
  if (/repository does not exist|unable to open config file|Is there a repository at the following location/i.test(stderr)) {
    return new ResticError('no-repository', `there is no restic repository there yet (restic: ${said})`);
  }
  if (/repository is already locked|unable to create lock/i.test(stderr)) return new ResticError('locked', `the repository is locked by another restic run (restic: ${said})`);
  return new ResticError('other', `restic failed (exit ${code}): ${said || 'no message'}`);
}

function lastLines(text: string): string {
  return text
    .split('\n')
    .map((l) => l.trim())
    .filter((l) => l !== '')
    .slice(-3)
    .join(' | ')
    .slice(0, 1_000);
}
