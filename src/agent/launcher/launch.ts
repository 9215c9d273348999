/**
 * Decides how `dockfleet agent` runs: as the launcher (an enrolled agent with a pinned release key,
 * not itself a launched child), or in-process as before. Enrollment happens here first, so the
 * launcher knows whether a key was pinned; its children find the identity and need no code.
 */
import type { Logger } from '../../lib/logger.ts';
import type { AgentConfig } from '../config.ts';
import { loadOrEnroll } from '../run-agent.ts';
import { UpgradeFiles } from '../upgrade/upgrade-files.ts';
import { AgentLauncher } from './agent-launcher.ts';

/** How long an agent whose launcher is gone has to stop by itself. */
const ORPHAN_GRACE_MS = 5_000;

/** The arguments a child gets: the launcher's own, without the enrollment code (already used). */
export function childArgs(args: string[]): string[] {
  const out: string[] = [];
  for (let i = 0; i < args.length; i++) {
    const arg = args[i]!;
    if (arg === '--code') i++;
    else if (!arg.startsWith('--code=')) out.push(arg);
  }
  return out;
}

/** Runs the launcher and resolves with the agent's exit code, or null when the agent runs in-process. */
export async function maybeLaunch(config: AgentConfig, args: string[], log: Logger, signal: AbortSignal): Promise<number | null> {
  if (process.env.DOCKFLEET_AGENT_CHILD === '1') {
    // A launched child stops when its launcher is gone (even killed outright), or a launcher started
    // again would run a second agent beside it; one that does not finish its shutdown is ended.
    const orphaned = (): void => {
      setTimeout(() => process.exit(1), ORPHAN_GRACE_MS).unref();
      process.kill(process.pid, 'SIGTERM');
    };
    // The launcher may be gone already, before this listener could hear it go (killed while this
    // child was still loading).
    if (process.connected) process.once('disconnect', orphaned);
    else orphaned();
    return null;
  }
  await loadOrEnroll(config, log);
  if ((await new UpgradeFiles(config.stateDir).releaseKey()) === null) return null;
  return new AgentLauncher(config.stateDir, childArgs(args), log).run(signal);
}
