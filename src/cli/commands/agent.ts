/**
 * `dockfleet agent`: runs the agent, or (`agent audit`) reads this host's audit log. Each loads its
 * own modules when it runs: `agent audit --verify` loads only src/agent/audit/ (and Node's own),
 * not the agent's runtime.
 */
import { parseArgs } from 'node:util';
import { AGENT_AUDIT_USAGE } from '../../agent/audit/audit-usage.ts';
import type { Command } from '../command.ts';

export const agentCommand: Command = {
  summary: 'run the agent beside a Docker engine (dials out; listens on no port)',
  usage: `dockfleet agent --hub URL [--code CODE] [--state DIR] [--docker unix:///var/run/docker.sock] [--name NAME] [--policy FILE]

  --hub URL     the hub, e.g. https://hub.example:7443 (HTTPS_PROXY/NO_PROXY are honoured)
  --code CODE   enrollment code or join token; needed only the first time
  --state DIR   the agent's identity: pinned hub CA and private key (default ./agent-state)
  --docker URL  the engine's socket (default unix:///var/run/docker.sock)
  --name NAME   the node's name (required with a join token)
  --policy FILE this host's Docker API policy (default /etc/dockfleet/agent-policy.json; built-in
                defaults when absent; set only on this host, never from the hub)

${AGENT_AUDIT_USAGE}`,
  async run(args) {
    if (args[0] === 'audit') return (await import('../../agent/audit/audit-command.ts')).runAgentAudit(args.slice(1));
    if (args[0] === 'restic-bridge') return (await import('../../agent/backup/restic-bridge.ts')).runResticBridge(args.slice(1));
    const { values } = parseArgs({
      args, strict: true,
      options: { hub: { type: 'string' }, code: { type: 'string' }, state: { type: 'string' }, docker: { type: 'string' }, name: { type: 'string' }, policy: { type: 'string' } },
    });
    const [{ agentConfigFrom }, { runAgent }, { createLogger }, { untilSignal }] = await Promise.all([
      import('../../agent/config.ts'), import('../../agent/run-agent.ts'), import('../../lib/logger.ts'), import('../until-signal.ts'),
    ]);
    const config = agentConfigFrom(values);
    const log = createLogger('agent');
    const stop = new AbortController();
    void untilSignal().then(() => stop.abort());
    await runAgent(config, log, stop.signal, {
      onConnected: (node) => process.stdout.write(`agent ${node} connected\n`),
      onPending: (node) => process.stdout.write(`agent ${node} pending approval\n`),
    });
  },
};
