/**
 * `dockfleet agent`: runs the agent, or (`agent audit`) reads this host's audit log, or
 * (`agent backup-recovery-code`) prints the escrow recovery codes kept on this host. Each loads its
 * own modules when it runs: `agent audit --verify` loads only src/agent/audit/ (and Node's own),
 * not the agent's runtime.
 */
import { parseArgs } from 'node:util';
import { AGENT_AUDIT_USAGE } from '../../agent/audit/audit-usage.ts';
import { LOG_FLAGS_HELP, LOG_FLAG_OPTIONS, logSettingsFrom } from '../../lib/log-settings.ts';
import { UsageError, type Command } from '../command.ts';
import { AGENT_INSTALL_USAGE } from '../install/install-usage.ts';

const RECOVERY_CODE_USAGE = `dockfleet agent backup-recovery-code [--state DIR] [--repository LABEL]

  Prints the escrow recovery code of this host's volume backup repositories, read from the
  agent's key files (DIR/backup-keys/, 0600), for a key that a scheduled backup made and no one
  was shown. Keep it off the host: with it, the hub's escrowed key opens the repository on a
  replacement host (dockfleet enroll NAME --replace --recovery-code-file F).
  --repository LABEL  the repository as backups name it (hub:volumes, a path, a URL); needed
                      when the host has more than one. The code is alone on the last line.`;

async function printRecoveryCodes(args: string[]): Promise<void> {
  const { values, positionals } = parseArgs({ args, strict: true, allowPositionals: true, options: { state: { type: 'string' }, repository: { type: 'string' } } });
  if (positionals.length > 0) throw new UsageError('backup-recovery-code takes no arguments');
  const { keptRecoveryCodes } = await import('../../agent/backup/backup-keys.ts');
  const state = values.state ?? './agent-state';
  const all = await keptRecoveryCodes(state);
  const codes = values.repository === undefined ? all : all.filter((k) => k.repository === values.repository);
  if (codes.length === 0) {
    throw new Error(
      values.repository === undefined
        ? `no escrow recovery code is kept in ${state}/backup-keys (no repository was made here under escrow custody)`
        : `no escrow recovery code is kept for ${values.repository} (kept: ${all.map((k) => k.repository).join(', ') || 'none'})`,
    );
  }
  if (codes.length > 1) throw new UsageError(`this host holds ${codes.length} recovery codes; name one with --repository (${codes.map((k) => k.repository).join(', ')})`);
  const kept = codes[0]!;
  process.stdout.write(`# recovery code of ${kept.repository} (key made ${new Date(kept.createdAt).toISOString()}); keep it off this host\n${kept.recoveryCode}\n`);
}

export const agentCommand: Command = {
  summary: 'run the agent beside a Docker engine (dials out; listens on no port)',
  usage: `dockfleet agent --hub URL [--code CODE] [--state DIR] [--docker unix:///var/run/docker.sock] [--name NAME] [--policy FILE]
                [--log-level LEVEL] [--log-format json|pretty]

  --hub URL     the hub, e.g. https://hub.example:7443 (HTTPS_PROXY/NO_PROXY are honoured)
  --code CODE   enrollment code or join token; needed only the first time
  --state DIR   the agent's identity: pinned hub CA and private key (default ./agent-state)
  --docker URL  the engine's socket (default unix:///var/run/docker.sock)
  --name NAME   the node's name (required with a join token)
  --policy FILE this host's Docker API policy (default /etc/dockfleet/agent-policy.json; built-in
                defaults when absent; set only on this host, never from the hub)
${LOG_FLAGS_HELP}

${AGENT_INSTALL_USAGE}

${AGENT_AUDIT_USAGE}

${RECOVERY_CODE_USAGE}`,
  async run(args) {
    if (args[0] === 'audit') return (await import('../../agent/audit/audit-command.ts')).runAgentAudit(args.slice(1));
    if (args[0] === 'backup-recovery-code') return printRecoveryCodes(args.slice(1));
    if (args[0] === 'install' || args[0] === 'uninstall') return (await import('../install/agent-install-command.ts')).runAgentInstallCommand(args[0], args.slice(1));
    if (args[0] === 'restic-bridge') return (await import('../../agent/backup/restic-bridge.ts')).runResticBridge(args.slice(1));
    const { values } = parseArgs({
      args,
      strict: true,
      options: { hub: { type: 'string' }, code: { type: 'string' }, state: { type: 'string' }, docker: { type: 'string' }, name: { type: 'string' }, policy: { type: 'string' }, ...LOG_FLAG_OPTIONS },
    });
    const logSettings = logSettingsFrom(values);
    const [{ agentConfigFrom }, { runAgent }, { createLogger }, { untilSignal }] = await Promise.all([
      import('../../agent/config.ts'),
      import('../../agent/run-agent.ts'),
      import('../../lib/logger.ts'),
      import('../until-signal.ts'),
    ]);
    const config = agentConfigFrom(values);
    const log = createLogger('agent', logSettings);
    // Never the code: only where the agent will look and what it will use.
    log.debug({ hub: config.hubUrl?.origin ?? null, state: config.stateDir, docker: config.dockerHost, policy: config.policyFile, logLevel: logSettings.level }, 'configuration read');
    const stop = new AbortController();
    void untilSignal().then(() => stop.abort());
    // Agents that pinned a release key run under their launcher, which can switch versions (issue 16).
    const launched = await (await import('../../agent/launcher/launch.ts')).maybeLaunch(config, args, log, stop.signal);
    if (launched !== null) {
      process.exitCode = launched;
      return;
    }
    await runAgent(config, log, stop.signal, {
      onConnected: (node) => {
        process.stdout.write(`agent ${node} connected\n`);
        process.send?.({ t: 'connected' });
      },
      onPending: (node) => process.stdout.write(`agent ${node} pending approval\n`),
    });
  },
};
