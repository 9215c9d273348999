/**
 * `npm start`: a hub on the embedded store in ./data and, when a local Docker engine answers,
 * an agent for it in the same process, enrolled on first start with a code minted in-process.
 */
import { hostname } from 'node:os';
import { join } from 'node:path';
import { parseArgs } from 'node:util';
import { agentConfigFrom } from '../../agent/config.ts';
import { EngineClient } from '../../agent/engine-client.ts';
import { AgentIdentity } from '../../agent/identity.ts';
import { runAgent } from '../../agent/run-agent.ts';
import { hubConfigFrom } from '../../hub/config.ts';
import { runHub } from '../../hub/run-hub.ts';
import { printSetupCode } from './setup-code.ts';
import { createLogger } from '../../lib/logger.ts';
import { LOG_FLAGS_HELP, LOG_FLAG_OPTIONS, logSettingsFrom } from '../../lib/log-settings.ts';
import type { Command } from '../command.ts';
import { untilSignal } from '../until-signal.ts';

const LOCAL_AGENT_DIR = 'local-agent';

function localNodeName(): string {
  const name = hostname()
    .toLowerCase()
    .replace(/[^a-z0-9-]+/g, '-')
    .replace(/^-+/, '')
    .slice(0, 63);
  return name === '' ? 'local' : name;
}

async function engineAnswers(dockerHost: string): Promise<boolean> {
  const engine = new EngineClient(dockerHost);
  try {
    const res = await engine.raw({ path: '/_ping', timeoutMs: 2_000 });
    res.resume();
    return res.statusCode === 200;
  } catch {
    return false;
  } finally {
    engine.close();
  }
}

export const startCommand: Command = {
  summary: 'run a hub and, if a local Docker engine answers, an agent for it (what `npm start` runs)',
  usage: `dockfleet start [--data DIR] [--listen HOST:PORT] [--master-key FILE] [--docker unix:///var/run/docker.sock] [--log-level LEVEL] [--log-format json|pretty]

${LOG_FLAGS_HELP}`,
  async run(args) {
    const { values } = parseArgs({
      args,
      strict: true,
      options: { data: { type: 'string' }, listen: { type: 'string' }, 'master-key': { type: 'string' }, docker: { type: 'string' }, ...LOG_FLAG_OPTIONS },
    });
    const logSettings = logSettingsFrom(values);
    const hubConfig = hubConfigFrom({ data: values.data, listen: values.listen, 'master-key': values['master-key'] });
    const hub = await runHub(hubConfig, createLogger('hub', logSettings));
    const stateDir = join(hubConfig.dataDir, LOCAL_AGENT_DIR);
    const agentConfig = agentConfigFrom({ hub: hub.url, state: stateDir, docker: values.docker });
    const stop = new AbortController();
    let agent: Promise<void> = Promise.resolve();
    if (await engineAnswers(agentConfig.dockerHost)) {
      let code: string | null = null;
      if (!(await AgentIdentity.load(stateDir))) code = (await hub.hub.enrollment.createCode(localNodeName())).code;
      agent = runAgent({ ...agentConfig, code }, createLogger('agent', logSettings), stop.signal, {
        onConnected: (node) => process.stdout.write(`agent ${node} connected\n`),
      }).catch((err: Error) => void process.stderr.write(`dockfleet: local agent stopped: ${err.message}\n`));
    } else {
      process.stdout.write(`no Docker engine answers at ${agentConfig.dockerHost}; running the hub alone\n`);
    }
    await printSetupCode(hubConfig.dataDir);
    process.stdout.write(`hub ready ${hub.url}\n`);
    process.stdout.write(`admin token: ${join(hubConfig.dataDir, 'admin.token')} · try: npx dockfleet nodes\n`);
    await untilSignal();
    stop.abort();
    await agent;
    await hub.close();
  },
};
