/** `dockfleet setup-code`: prints the one-time code the web UI's setup page asks for. It reads
 * DIR/setup.code, so only someone who can read the hub's data directory can make the first admin. */
import { join } from 'node:path';
import { parseArgs } from 'node:util';
import { readSetupCode, SETUP_CODE_FILE } from '../../hub/auth/setup-code.ts';
import { DockfleetError } from '../../protocol/errors.ts';
import type { Command } from '../command.ts';

export const setupCodeCommand: Command = {
  summary: "print the one-time code for the web UI's first-run setup page",
  usage: `dockfleet setup-code [--data DIR]

Prints the code that the setup page asks for (field "Setup code"), alone on one line. The hub
makes it on start while no account can sign in yet, and it stops working once the first admin
exists.

  --data DIR  the hub's state (default ./data)`,
  async run(args) {
    const { values } = parseArgs({ args, strict: true, options: { data: { type: 'string' } } });
    const dir = values.data ?? './data';
    let code: string | null;
    try {
      code = await readSetupCode(dir);
    } catch (err) {
      throw new DockfleetError('bad_request', `cannot read ${join(dir, SETUP_CODE_FILE)}: ${(err as NodeJS.ErrnoException).code ?? 'error'}`);
    }
    if (code === null) {
      throw new DockfleetError('invalid_state', `no setup code in ${dir}: setup is done already (sign in), or the hub has not started on this directory yet`);
    }
    process.stdout.write(`${code}\n`);
  },
};

/** For `dockfleet hub` and `start`: while setup is needed, the code goes to stdout, to whoever
 * runs the hub. Never to the structured logs (stderr), which are often shipped elsewhere. */
export async function printSetupCode(dataDir: string): Promise<void> {
  const code = await readSetupCode(dataDir);
  if (code !== null) process.stdout.write(`first-run setup code: ${code} (the setup page asks for it; \`dockfleet setup-code\` shows it again)\n`);
}
