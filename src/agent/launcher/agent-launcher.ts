/**
 * The agent's launcher: a small supervisor that runs the real agent as a child process, from
 * <state>/versions/<v>/ once a release was installed, else from this checkout. When the child
 * asks to switch (it staged a verified release and wrote upgrade.json), the launcher stops it and
 * starts the new version; if that one does not report "connected" within the trial (60 s), or
 * exits first, the launcher stops it, goes back to the old version and records why
 * (upgrade-result.json), which the old agent then reports to the hub. Once a new version is kept,
 * versions older than the one it replaced are removed. A version directory gone from under it
 * (deleted by hand) is said in one line, and the launcher runs the version before it, or the
 * installed checkout. It runs only for agents
 * that pinned a release key at enrollment: the others cannot be upgraded, so they run in-process.
 * Parent and child talk over Node's IPC channel; a child whose launcher dies stops too.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { stat } from 'node:fs/promises';
import { join } from 'node:path';
import type { Logger } from '../../lib/logger.ts';
import { CODE_ROOT } from '../upgrade/code-root.ts';
import { UpgradeFiles, type PendingUpgrade } from '../upgrade/upgrade-files.ts';

const STOP_GRACE_MS = 10_000;

interface Trial {
  upgrade: PendingUpgrade;
  timer: NodeJS.Timeout;
}

export class AgentLauncher {
  readonly #files: UpgradeFiles;
  readonly #args: string[];
  readonly #log: Logger;
  #child: ChildProcess | null = null;
  /** The version the child runs (null: the installed checkout). */
  #version: string | null = null;
  #trial: Trial | null = null;
  #switching = false;
  #stopping = false;

  constructor(stateDir: string, args: string[], log: Logger) {
    this.#files = new UpgradeFiles(stateDir);
    this.#args = args;
    this.#log = log;
  }

  /** Runs until the agent stops for good (or `signal` aborts); resolves with its exit code. */
  async run(signal: AbortSignal): Promise<number> {
    // A switch that a dead launcher left unsettled is not trusted: go back to where it came from.
    const left = await this.#files.pending();
    if (left !== null) await this.#rollBack(left, 'the launcher stopped while the new version was on trial');
    return new Promise<number>((resolve) => {
      signal.addEventListener(
        'abort',
        () => {
          this.#stopping = true;
          void this.#stopChild().then(() => resolve(0));
        },
        { once: true },
      );
      void this.#start(resolve);
    });
  }

  async #start(finish: (code: number) => void): Promise<void> {
    let record = await this.#files.currentRecord();
    if (record.version !== null && !(await this.#isInstalled(record.version))) record = await this.#fallBack(record.version, record.previous);
    const version = record.version;
    this.#version = version;
    const root = version === null ? CODE_ROOT : this.#files.versionDir(version);
    const child = spawn(process.execPath, [join(root, 'bin', 'dockfleet.js'), 'agent', ...this.#args], {
      stdio: ['ignore', 'inherit', 'inherit', 'ipc'],
      env: { ...process.env, DOCKFLEET_AGENT_CHILD: '1' },
    });
    this.#child = child;
    this.#log.info({ version: version ?? 'installed', pid: child.pid }, 'agent started');
    child.on('message', (msg: { t?: unknown }) => {
      if (msg?.t === 'connected') void this.#onConnected();
      else if (msg?.t === 'switch') void this.#switch(finish);
    });
    child.once('exit', (code, sig) => {
      if (this.#child === child) this.#child = null;
      if (this.#stopping || this.#switching) return;
      if (this.#trial) {
        const trial = this.#trial;
        clearTimeout(trial.timer);
        this.#trial = null;
        void this.#rollBack(trial.upgrade, `version ${trial.upgrade.to} exited (${sig ?? `code ${code}`}) before it reconnected`).then(() => this.#start(finish));
        return;
      }
      finish(code ?? 1);
    });
  }

  async #onConnected(): Promise<void> {
    const trial = this.#trial;
    // Only the version on trial settles it (not one the launcher fell back to).
    if (!trial || this.#version !== trial.upgrade.to) return;
    clearTimeout(trial.timer);
    this.#trial = null;
    await this.#files.setResult({ from: trial.upgrade.from, to: trial.upgrade.to, ok: true, reason: null, at: Date.now() });
    await this.#files.setPending(null);
    this.#log.info({ version: trial.upgrade.to }, 'new version connected; upgrade kept');
    // Keep the new version and the one it replaced (for a rollback); older ones only take space.
    const pruned = await this.#files.pruneVersions([trial.upgrade.to, trial.upgrade.from]).catch((err: Error) => {
      this.#log.warn({ err: err.message }, 'could not remove old versions');
      return [];
    });
    if (pruned.length > 0) this.#log.info({ removed: pruned }, 'old versions removed');
  }

  /** current.json names a version whose directory is gone: run the one before it, or the checkout. */
  async #fallBack(missing: string, previous: string | null): Promise<{ version: string | null; previous: null }> {
    const version = previous !== null && previous !== missing && (await this.#isInstalled(previous)) ? previous : null;
    this.#log.error(
      { missing, dir: this.#files.versionDir(missing), running: version ?? 'installed' },
      `version ${missing} is missing (${this.#files.versionDir(missing)} was removed); running ${version ?? 'the installed checkout'} instead`,
    );
    await this.#files.setCurrent(version, null);
    return { version, previous: null };
  }

  async #switch(finish: (code: number) => void): Promise<void> {
    const upgrade = await this.#files.pending();
    if (upgrade === null || this.#switching) return;
    this.#switching = true;
    try {
      await this.#stopChild();
      // Remember from's own fallback, so that a rollback restores it whole.
      upgrade.fromPrevious = (await this.#files.currentRecord()).previous;
      await this.#files.setPending(upgrade);
      await this.#files.setCurrent(upgrade.to, upgrade.from);
    } finally {
      this.#switching = false;
    }
    await this.#start(finish);
    const timer = setTimeout(() => {
      this.#trial = null;
      this.#switching = true;
      void this.#stopChild()
        .then(() => this.#rollBack(upgrade, `version ${upgrade.to} did not reconnect within ${Math.round(upgrade.trialMs / 1000)} s`))
        .finally(() => {
          this.#switching = false;
        })
        .then(() => this.#start(finish));
    }, upgrade.trialMs);
    this.#trial = { upgrade, timer };
  }

  async #rollBack(upgrade: PendingUpgrade, reason: string): Promise<void> {
    this.#log.warn({ from: upgrade.from, to: upgrade.to, reason }, 'going back to the previous version');
    // `from` is a version installed under versions/, or the checkout's own version.
    const installed = await this.#isInstalled(upgrade.from);
    await this.#files.setCurrent(installed ? upgrade.from : null, installed ? (upgrade.fromPrevious ?? null) : null);
    await this.#files.setResult({ from: upgrade.from, to: upgrade.to, ok: false, reason, at: Date.now() });
    await this.#files.setPending(null);
  }

  async #isInstalled(version: string): Promise<boolean> {
    return (await stat(join(this.#files.versionDir(version), 'bin', 'dockfleet.js')).catch(() => null)) !== null;
  }

  async #stopChild(): Promise<void> {
    const child = this.#child;
    if (!child || child.exitCode !== null || child.signalCode !== null) return;
    const exited = new Promise<void>((resolve) => child.once('exit', () => resolve()));
    child.kill('SIGTERM');
    const timer = setTimeout(() => child.kill('SIGKILL'), STOP_GRACE_MS);
    await exited;
    clearTimeout(timer);
  }
}
