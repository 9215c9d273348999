/** The `dockfleet` command: dispatches to a subcommand; failures are one line on stderr. */
import { DockfleetError } from '../protocol/errors.ts';
import { UsageError, type Command } from './command.ts';
/**
 * Each command's module is loaded only when that command runs (through tsx, loading the whole CLI
 * costs seconds: `agent audit --verify` on a host should not pay for the hub's import graph).
 */
const COMMANDS: Record<string, () => Promise<Command>> = {
  hub: async () => (await import('./commands/hub.ts')).hubCommand,
  agent: async () => (await import('./commands/agent.ts')).agentCommand,
  start: async () => (await import('./commands/start.ts')).startCommand,
  enroll: async () => (await import('./commands/node-admin.ts')).enrollCommand,
  'join-token': async () => (await import('./commands/node-admin.ts')).joinTokenCommand,
  approve: async () => (await import('./commands/node-admin.ts')).approveCommand,
  nodes: async () => (await import('./commands/node-admin.ts')).nodesCommand,
  node: async () => (await import('./commands/node-admin.ts')).nodeCommand,
  revoke: async () => (await import('./commands/node-admin.ts')).revokeCommand,
  rotate: async () => (await import('./commands/node-admin.ts')).rotateCommand,
  'docker-env': async () => (await import('./commands/docker-env.ts')).dockerEnvCommand,
  connect: async () => (await import('./commands/connect.ts')).connectCommand,
  'setup-code': async () => (await import('./commands/setup-code.ts')).setupCodeCommand,
  label: async () => (await import('./commands/label.ts')).labelCommand,
  stack: async () => (await import('./commands/stack.ts')).stackCommand,
  jobs: async () => (await import('./commands/jobs.ts')).jobsCommand,
  job: async () => (await import('./commands/jobs.ts')).jobShowCommand,
  volume: async () => (await import('./commands/volume.ts')).volumeCommand,
  routes: async () => (await import('./commands/routes.ts')).routesCommand,
  certs: async () => (await import('./commands/certs.ts')).certsCommand,
  'operator-key': async () => (await import('./commands/operator-key.ts')).operatorKeyCommand,
  audit: async () => (await import('./commands/audit.ts')).auditCommand,
  backup: async () => (await import('./commands/backup.ts')).backupCommand,
  restore: async () => (await import('./commands/backup.ts')).restoreCommand,
  'release-key': async () => (await import('./commands/release.ts')).releaseKeyCommand,
  release: async () => (await import('./commands/release.ts')).releaseCommand,
  agents: async () => (await import('./commands/agents.ts')).agentsCommand,
};

async function overview(): Promise<string> {
  const width = Math.max(...Object.keys(COMMANDS).map((n) => n.length));
  const commands = await Promise.all(Object.entries(COMMANDS).map(async ([name, load]) => [name, await load()] as const));
  const lines = commands.map(([name, c]) => `  ${name.padEnd(width)}  ${c.summary}`);
  return `dockfleet — one control plane for many Docker hosts\n\nUsage: dockfleet COMMAND [options]   (dockfleet COMMAND --help; dockfleet --version)\n\n${lines.join('\n')}\n`;
}

export async function main(argv: string[]): Promise<number> {
  const [name, ...args] = argv;
  if (name === undefined || name === '--help' || name === '-h' || name === 'help') {
    process.stdout.write(await overview());
    return name === undefined ? 2 : 0;
  }
  if (name === '--version' || name === '-V' || name === 'version') {
    const { readFile } = await import('node:fs/promises');
    const pkg = JSON.parse(await readFile(new URL('../../package.json', import.meta.url), 'utf8')) as { version: string };
    process.stdout.write(`${pkg.version}\n`);
    return 0;
  }
  const load = Object.hasOwn(COMMANDS, name) ? COMMANDS[name] : undefined;
  if (!load) {
    process.stderr.write(`dockfleet: unknown command "${name}" (see dockfleet --help)\n`);
    return 2;
  }
  const command = await load();
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
