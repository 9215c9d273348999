/**
 * Turns at a restic repository among this agent's own runs. restic locks a repository itself:
 * backups, restores, listings and verifications share it, while `forget`/`prune` hold it alone
 * and any other run meanwhile fails at once with "repository is already locked". A schedule's
 * retention on one volume and a "Back up now" on another, both into the host's repository,
 * would then fail each other. Here a run that needs the repository alone waits for the shared
 * runs in progress and holds off new ones; shared runs go together. Waiters are served in
 * order, so neither kind starves. (Another host's lock on a shared repository is restic-runner's
 * retry to wait out.)
 */

type Kind = 'shared' | 'exclusive';

interface Waiter {
  kind: Kind;
  start: () => void;
}

class Turns {
  shared = 0;
  exclusive = false;
  readonly queue: Waiter[] = [];
}

const byRepo = new Map<string, Turns>();

/** Runs `fn` in its turn at `repo`. */
export async function inRepoTurn<T>(repo: string, kind: Kind, fn: () => Promise<T>): Promise<T> {
  let turns = byRepo.get(repo);
  if (!turns) byRepo.set(repo, (turns = new Turns()));
  const t = turns;
  await new Promise<void>((resolve) => {
    const free = kind === 'shared' ? !t.exclusive && t.queue.length === 0 : !t.exclusive && t.shared === 0 && t.queue.length === 0;
    const start = (): void => {
      if (kind === 'shared') t.shared++;
      else t.exclusive = true;
      resolve();
    };
    if (free) start();
    else t.queue.push({ kind, start });
  });
  try {
    return await fn();
  } finally {
    if (kind === 'shared') t.shared--;
    else t.exclusive = false;
    next(repo, t);
  }
}

/** Lets in the waiters whose turn it is: one exclusive run, or every shared run up to the next exclusive one. */
function next(repo: string, t: Turns): void {
  while (t.queue.length > 0 && !t.exclusive) {
    const head = t.queue[0]!;
    if (head.kind === 'exclusive') {
      if (t.shared > 0) return;
      t.queue.shift();
      head.start();
      return;
    }
    t.queue.shift();
    head.start();
  }
  if (!t.exclusive && t.shared === 0 && t.queue.length === 0) byRepo.delete(repo);
}

/** restic commands that hold the repository alone. */
export function needsRepoAlone(args: readonly string[]): boolean {
  const command = args.find((a) => !a.startsWith('-'));
  return command === 'forget' || command === 'prune' || command === 'rebuild-index' || command === 'migrate';
}
