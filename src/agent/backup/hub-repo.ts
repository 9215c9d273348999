/**
 * The "hub" repository, as restic is told to reach it: restic's rclone backend spawns a program
 * and speaks restic's REST protocol (HTTP/2, cleartext) on its stdin/stdout. That program is
 * `dockfleet agent restic-bridge`, which relays every request to this host's running agent over
 * `<state>/restic.sock`, and the agent carries it over its channel to the hub. The hub keeps the
 * repository under its data directory, per node; it only ever holds restic's ciphertext (the
 * repository password stays on this host, in RESTIC_PASSWORD or a password file).
 *
 * Callers run restic as `restic -r REPO ...OPTIONS <command>` with what `hubRepoArgs` returns.
 */
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { isRepoName } from '../../protocol/restic-reverse.ts';

export { isRepoName };

/** The bridge's unix socket in the agent's state directory (0600, the agent's user only). */
export const RESTIC_SOCKET_NAME = 'restic.sock';

export function resticSocketPath(stateDir: string): string {
  return join(stateDir, RESTIC_SOCKET_NAME);
}

export interface ResticRepoArgs {
  /** restic's `-r` value. */
  readonly repo: string;
  /** restic's `-o` options, ready to splice into argv (`['-o', 'rclone.program=…', …]`). */
  readonly options: string[];
}

const BIN = fileURLToPath(new URL('../../../bin/dockfleet.js', import.meta.url));

/**
 * One argument for restic's own splitter (internal/backend/shell_split.go): it splits on
 * whitespace and backslashes outside quotes and knows no escapes, so an argument that needs
 * quoting is wrapped in whichever quote it does not contain.
 */
export function resticShellWord(word: string): string {
  if (word !== '' && !/[\s\\'"]/.test(word)) return word;
  if (!word.includes('"')) return `"${word}"`;
  if (!word.includes("'")) return `'${word}'`;
  throw new Error(`cannot pass ${JSON.stringify(word)} to restic's rclone backend (it holds both quote kinds)`);
}

/**
 * restic's arguments for repository `repoName` at the hub, for the agent whose state is in
 * `stateDir`. restic appends the part after `rclone:` to the program's arguments; the bridge
 * checks it against `--repo`.
 */
export function hubRepoArgs(stateDir: string, repoName: string): ResticRepoArgs {
  if (!isRepoName(repoName)) throw new Error(`repository name must be 1–128 letters, digits, '_', '.' or '-' (not first), got ${JSON.stringify(repoName)}`);
  const program = [process.execPath, BIN].map(resticShellWord).join(' ');
  const args = ['agent', 'restic-bridge', '--state', stateDir, '--repo', repoName].map(resticShellWord).join(' ');
  return {
    repo: `rclone:${repoName}`,
    options: ['-o', `rclone.program=${program}`, '-o', `rclone.args=${args}`],
  };
}
