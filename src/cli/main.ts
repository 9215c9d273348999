/** The `dockfleet` command: dispatches to a subcommand; failures are one line on stderr. */
import { DockfleetError } from '../protocol/errors.ts';
import { UsageError, type Command } from './command.ts';
import { agentCommand } from './commands/agent.ts';
import { connectCommand } from './commands/connect.ts';
import { dockerEnvCommand } from './commands/docker-env.ts';
import { hubCommand } from './commands/hub.ts';
import { jobShowCommand, jobsCommand } from './commands/jobs.ts';
import { approveCommand, enrollCommand, joinTokenCommand, nodesCommand, revokeCommand, rotateCommand } from './commands/node-admin.ts';
import { setupCodeCommand } from './commands/setup-code.ts';
import { labelCommand } from './commands/label.ts';
import { stackCommand } from './commands/stack.ts';
import { routesCommand } from './commands/routes.ts';
import { certsCommand } from './commands/certs.ts';
import { operatorKeyCommand } from './commands/operator-key.ts';
import { auditCommand } from './commands/audit.ts';
import { startCommand } from './commands/start.ts';

const COMMANDS: Record<string, Command> = {
  hub: hubCommand,
  agent: agentCommand,
  start: startCommand,
  enroll: enrollCommand,
  'join-token': joinTokenCommand,
  approve: approveCommand,
  nodes: nodesCommand,
  revoke: revokeCommand,
  rotate: rotateCommand,
  'docker-env': dockerEnvCommand,
  connect: connectCommand,
  'setup-code': setupCodeCommand,
  label: labelCommand,
  stack: stackCommand,
  jobs: jobsCommand,
  job: jobShowCommand,
  routes: routesCommand,
  certs: certsCommand,
  'operator-key': operatorKeyCommand,
  audit: auditCommand,
};

function overview(): string {
  const width = Math.max(...Object.keys(COMMANDS).map((n) => n.length));
  const lines = Object.entries(COMMANDS).map(([name, c]) => `  ${name.padEnd(width)}  ${c.summary}`);
  return `dockfleet — one control plane for many Docker hosts\n\nUsage: dockfleet COMMAND [options]   (dockfleet COMMAND --help)\n\n${lines.join('\n')}\n`;
}

export async function main(argv: string[]): Promise<number> {
  const [name, ...args] = argv;
  if (name === undefined || name === '--help' || name === '-h' || name === 'help') {
    process.stdout.write(overview());
    return name === undefined ? 2 : 0;
  }
  const command = COMMANDS[name];
  if (!command) {
    process.stderr.write(`dockfleet: unknown command "${name}" (see dockfleet --help)\n`);
    return 2;
  }
  if (args.includes('--help') || args.includes('-h')) {
    process.stdout.write(`${command.usage}\n`);
    return 0;
  }
  try {
    await command.run(args);
    return 0;
  } catch (err) {
    const usage = err instanceof UsageError || (err as { code?: string }).code?.startsWith('ERR_PARSE_ARGS');
    const message = err instanceof Error ? err.message : String(err);
    const code = err instanceof DockfleetError ? ` [${err.code}]` : '';
    process.stderr.write(`dockfleet ${name}: ${message.split('\n')[0]}${code}${usage ? ` (see dockfleet ${name} --help)` : ''}\n`);
    return usage ? 2 : 1;
  }
}
