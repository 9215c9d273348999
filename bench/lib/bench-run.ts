/** What every bench's entry point shares: a timestamped progress line, and running `main` to
 * an exit code that says whether the bench finished. */

/** `[HH:MM:SS] msg` on stdout. */
export function benchLog(msg: string): void {
  process.stdout.write(`[${new Date().toISOString().slice(11, 19)}] ${msg}\n`);
}

/** Runs the bench; exits 0 when it finished, 1 with the stack when it failed. */
export function runBench(name: string, main: () => Promise<void>): void {
  main().then(
    () => process.exit(0),
    (err: unknown) => {
      process.stderr.write(`${name} bench failed: ${(err as Error).stack ?? String(err)}\n`);
      process.exit(1);
    },
  );
}
