/** `dockfleet agent`: enroll on first start, then keep the channel to the hub and the engine
 * inventory running until stopped. Listens on no port. */
import type { Logger } from '../lib/logger.ts';
import { dockerErrorBody } from '../protocol/docker-tunnel.ts';
import { DockfleetError } from '../protocol/errors.ts';
import type { AgentConfig } from './config.ts';
import { auditVolumeFiles } from './audit/audited-volume-files.ts';
import { HostAuditLog } from './audit/host-audit.ts';
import { IntentGuard } from './intent/intent-guard.ts';
import { createEngineProxy } from './docker/engine-proxy.ts';
import { createContainerDialer } from './edge/container-dialer.ts';
import { EngineClient } from './engine-client.ts';
import { enrollAgent } from './enroll.ts';
import { runChannel } from './hub-channel.ts';
import { AgentIdentity } from './identity.ts';
import { ReplicaList } from './replica-list.ts';
import { InventoryWatcher } from './inventory-watcher.ts';
import type { StackJobRunner } from './jobs/job-runner.ts';
import { recoverJobs } from './jobs/recover-jobs.ts';
import { startVolumeBackups } from './backup/start-volume-backups.ts';
import { listenResticBridge } from './backup/restic-bridge-socket.ts';
import { withBackupReports } from './backup/backup-report-stream.ts';
import { StackStateDir } from './stacks/desired-state.ts';
import { DriftWatcher } from './stacks/drift-watch.ts';
import { StackEngine } from './stacks/stack-engine.ts';
import { StackApplier } from './stacks/stack-job-runner.ts';
import { createStacksStatusHandler } from './stacks/stacks-status-stream.ts';
import { engineHostView } from './policy/host-view.ts';
import { PolicyGate } from './policy/policy-gate.ts';
import { AgentPolicy } from './policy/policy.ts';
import { summarisePolicy } from './policy/policy-summary.ts';
import { createTunnelHandler, type TunnelHandler } from './tunnel-handler.ts';
import { StatsSampler } from './stats/stats-sampler.ts';
import { createStatsStreamHandler } from './stats/stats-stream.ts';
import { engineMountpoints } from './volume-files/engine-mountpoints.ts';
import { createVolumeFilesHandler } from './volume-files/volume-files-handler.ts';
import { VolumeFiles } from './volume-files/volume-files.ts';
import { runningVersion } from './upgrade/code-root.ts';
import { withUpgrades } from './upgrade/upgrade-handler.ts';

export interface AgentHooks {
  /** Called each time the channel is up (the CLI prints `agent NAME connected`). */
  onConnected?: (node: string) => void;
  onPending?: (node: string) => void;
  /** What carries out the hub's jobs (tests give their own). */
  runner?: StackJobRunner;
}

/** The volume file browser answers only where this host's policy turns it on (refusals logged here). */
function guardedVolumeFiles(policy: AgentPolicy, handler: TunnelHandler, log: Logger): TunnelHandler {
  return (req, res) => {
    const verdict = policy.checkVolumeFiles();
    if (verdict.allowed) return handler(req, res);
    log.warn({ method: req.method, path: req.url.split('?')[0], reason: verdict.reason }, 'volume files call refused by local policy');
    const body = dockerErrorBody(verdict.reason);
    res.writeHead(403, { 'content-type': 'application/json', 'content-length': Buffer.byteLength(body) });
    res.end(body);
  };
}

/** Returns the identity (enrolling when --state holds none). */
export async function loadOrEnroll(config: AgentConfig, log: Logger): Promise<AgentIdentity> {
  const existing = await AgentIdentity.load(config.stateDir);
  if (existing) {
    if (config.code) log.info({ node: existing.node }, 'already enrolled; --code ignored');
    if (config.name && config.name !== existing.node) {
      throw new DockfleetError('bad_request', `state in ${config.stateDir} belongs to node ${existing.node}, not ${config.name}`);
    }
    return existing;
  }
  if (!config.code) throw new DockfleetError('bad_request', `not enrolled yet (no identity in ${config.stateDir}); pass --code`);
  if (!config.hubUrl) throw new DockfleetError('bad_request', 'first start needs --hub URL');
  const identity = await enrollAgent({ hubUrl: config.hubUrl, code: config.code, name: config.name ?? undefined, stateDir: config.stateDir });
  log.info({ node: identity.node }, 'enrolled');
  return identity;
}

export async function runAgent(config: AgentConfig, log: Logger, signal: AbortSignal, hooks: AgentHooks = {}): Promise<void> {
  // A malformed policy file stops the agent before it connects: fail closed.
  const policy = await AgentPolicy.load(config.policyFile);
  const identity = await loadOrEnroll(config, log);
  // The host's own record of every mutating action, executed or refused (`dockfleet agent audit`).
  const audit = HostAuditLog.open(config.stateDir, log);
  // Signed intent, when the local policy asks for it (its nonces live in the state dir).
  const intent = IntentGuard.open({ node: identity.node, policy: policy.policy.signedIntent, stateDir: config.stateDir, audit, log });
  const engine = new EngineClient(config.dockerHost);
  const inventory = new InventoryWatcher(engine, log);
  // The watcher stops with the agent, also when the channel ends for good (revoked).
  const stop = new AbortController();
  signal.addEventListener('abort', () => stop.abort(), { once: true });
  // One gate for every Docker call: the hub's, and the ones stacks make on this host.
  const gate = new PolicyGate(policy, engineHostView(engine));
  const stackState = new StackStateDir(config.stateDir);
  const stackEngine = new StackEngine(engine);
  const drift = new DriftWatcher(stackEngine, stackState);
  const stackRunner = hooks.runner ?? new StackApplier({ engine: stackEngine, policy: gate, state: stackState, onChange: () => drift.poke() });
  // Volume backups (issue 14): containers a cut-short backup stopped start again before jobs resume.
  const backups = await startVolumeBackups({ stateDir: config.stateDir, node: identity.node, engine, policy, log, stacks: stackRunner, keys: identity });
  const runner = backups.runner;
  // Jobs interrupted by the last stop resume now, before the hub can deliver anything.
  const jobs = await recoverJobs({ stateDir: config.stateDir, node: identity.node, identity, runner, log, signal: stop.signal, audit, intent });
  // Per-volume backup policies run on the agent's own clock, also while the hub is away.
  const watching = Promise.all([inventory.run(stop.signal), drift.run(stop.signal), backups.schedule.run(stop.signal)]);
  // Samples only while the hub holds a stats stream open (someone is looking at a page).
  const stats = new StatsSampler(engine, log);
  stop.signal.addEventListener('abort', () => stats.stop(), { once: true });
  // restic's way to the hub's repositories (<state>/restic.sock, relayed over the channel).
  const resticBridge = await listenResticBridge(config.stateDir, log);
  // The hub replicas to dial (issue 17): the enrollment hub (or --hub) first, then those learned.
  const hubUrl = config.hubUrl ?? new URL(identity.hubUrl);
  const replicas = await ReplicaList.open(config.stateDir, hubUrl, log);
  try {
    await runChannel(
      {
        hubUrl,
        replicas,
        onReplicas: (list) => replicas.learn(list),
        identity,
        agentVersion: runningVersion(),
        handler: withUpgrades(
          config.stateDir,
          log,
          withBackupReports(
            backups.reports,
            resticBridge.wrap(
              createTunnelHandler({
                identity,
                inventory,
                log,
                // The policy's host pass asks the same engine, and resolves paths on this host.
                docker: createEngineProxy(engine, gate, log, { audit, intent }),
                volumeFiles: auditVolumeFiles(audit, guardedVolumeFiles(policy, createVolumeFilesHandler(new VolumeFiles({ resolveMountpoint: engineMountpoints(engine) }), log, intent), log)),
                jobs: jobs.handler,
                stacksStatus: createStacksStatusHandler(drift),
                policySummary: summarisePolicy(policy.policy),
                audit,
                edgeDial: createContainerDialer(engine, log, () => {
                  const v = policy.checkIngress();
                  return v.allowed ? null : v.reason;
                }),
                stats: createStatsStreamHandler(stats),
                replicas: (list) => replicas.learn(list),
              }),
            ),
          ),
        ),
        log,
        onConnected: () => hooks.onConnected?.(identity.node),
        onPending: () => hooks.onPending?.(identity.node),
      },
      signal,
    );
  } finally {
    stop.abort();
    await jobs.settle(5_000);
    await watching;
    engine.close();
    audit.close();
    intent.close();
    await resticBridge.close();
  }
}
