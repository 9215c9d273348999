/**
 * `dockfleet agent install|uninstall`: enroll this host once, then run the agent as a systemd
 * service (agent-unit.ts); or take the service away again.
 */
import { rm } from 'node:fs/promises';
import { parseArgs } from 'node:util';
import { agentConfigFrom } from '../../agent/config.ts';
import { EngineClient } from '../../agent/engine-client.ts';
import { AgentIdentity } from '../../agent/identity.ts';
import { createLogger } from '../../lib/logger.ts';
import { logSettingsFrom } from '../../lib/log-settings.ts';
import { UsageError } from '../command.ts';
import { AGENT_STATE_DIR, AGENT_UNIT, agentUnitText } from './agent-unit.ts';
import { programPaths } from './program-paths.ts';
import { enableNow, SYSTEM_UNIT_DIR, systemdVersion, writeUnit } from './systemd-host.ts';
import { uninstallUnit } from './uninstall-args.ts';

const say = (line: string): void => void process.stdout.write(`${line}\n`);

/** The engine's data root, from the engine itself when it answers; Docker's default otherwise. */
/** The host paths the policy's backups section writes repositories under: repositoryPaths, else a path default repository. */
async function backupPaths(policyFile: string | null): Promise<string[]> {
  const { loadPolicy } = await import('../../agent/policy/policy-file.ts');
  const backups = (await loadPolicy(policyFile)).backups;
  if (!backups) return [];
  if (backups.repositoryPaths) return [...backups.repositoryPaths];
  return backups.repository?.startsWith('/') ? [backups.repository] : [];
}

async function dockerRoot(dockerHost: string): Promise<string> {
  const engine = new EngineClient(dockerHost);
  try {
    const info = await engine.json<{ DockerRootDir?: unknown }>({ path: '/info', timeoutMs: 3_000 });
    const root = info?.DockerRootDir;
    return typeof root === 'string' && root.startsWith('/') ? root : '/var/lib/docker';
  } catch {
    return '/var/lib/docker';
  } finally {
    engine.close();
  }
}

async function install(args: string[]): Promise<void> {
  const { values, positionals } = parseArgs({
    args,
    strict: true,
    allowPositionals: true,
    options: {
      hub: { type: 'string' },
      code: { type: 'string' },
      state: { type: 'string' },
      docker: { type: 'string' },
      policy: { type: 'string' },
      name: { type: 'string' },
      'log-level': { type: 'string' },
      'unit-dir': { type: 'string' },
    },
  });
  if (positionals.length > 0) throw new UsageError('agent install takes no arguments');
  if (values.hub === undefined) throw new UsageError('agent install needs --hub URL');
  const logLevel = values['log-level'] === undefined ? null : logSettingsFrom({ 'log-level': values['log-level'] }, {}).level;
  const config = agentConfigFrom({ ...values, state: values.state ?? AGENT_STATE_DIR });
  const { loadOrEnroll } = await import('../../agent/run-agent.ts');
  const identity = await loadOrEnroll(config, createLogger('agent', logSettingsFrom({ 'log-level': values['log-level'] })));
  say(`enrolled as ${identity.node}; its identity is in ${config.stateDir}`);
  const placement = { unitName: AGENT_UNIT, unitDir: values['unit-dir'] ?? SYSTEM_UNIT_DIR };
  const path = await writeUnit(
    placement,
    agentUnitText({
      programs: programPaths(),
      hubUrl: config.hubUrl!.toString().replace(/\/$/, ''),
      stateDir: config.stateDir,
      dockerHost: config.dockerHost,
      policyFile: values.policy === undefined ? null : config.policyFile,
      dockerRoot: await dockerRoot(config.dockerHost),
      backupPaths: await backupPaths(config.policyFile),
      logLevel,
      systemdVersion: await systemdVersion(),
    }),
  );
  say(`wrote ${path}`);
  await enableNow(placement, say);
}

async function uninstall(args: string[]): Promise<void> {
  const { purge, dir } = await uninstallUnit(args, 'agent', AGENT_UNIT, 'state', say);
  if (!purge) return;
  const stateDir = agentConfigFrom({ state: dir ?? AGENT_STATE_DIR }).stateDir;
  // Only a directory that holds an agent identity is removed: --purge --state / must do nothing.
  if (!(await AgentIdentity.load(stateDir))) {
    say(`${stateDir} holds no agent identity: left as it is`);
    return;
  }
  await rm(stateDir, { recursive: true, force: true });
  say(`removed ${stateDir} (this host's identity is gone: revoke the node on the hub too)`);
}

export async function runAgentInstallCommand(verb: 'install' | 'uninstall', args: string[]): Promise<void> {
  return verb === 'install' ? install(args) : uninstall(args);
}
