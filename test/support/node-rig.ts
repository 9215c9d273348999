/** One node end to end: a private engine, an in-process hub on a fixed port (so it can be
 * restarted on the same data), and a real `dockfleet agent` process for NODE. Everything lives in
 * one temp dir: DIR/hub (the hub's data), DIR/agent (the agent's state), and a policy path that
 * does not exist, so a test never reads this machine's own policy file. */
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { startEngines, stopEngines, type TestEngine } from './engines.ts';
import { mintCode, startTestHub, type TestHub } from './hub-fixture.ts';
import { freePort, spawnDockfleet, type DockfleetProcess } from './processes.ts';

export interface NodeRig {
  engine: TestEngine;
  hub: TestHub;
  /** The temp dir holding everything below. */
  dir: string;
  /** The hub's data dir; a hub restarted on it and `port` keeps its nodes. */
  hubDir: string;
  port: number;
  agent: DockfleetProcess;
}

export async function startNodeRig(prefix: string, node: string): Promise<NodeRig> {
  const [engine] = (await startEngines(1, { prefix })) as [TestEngine];
  const dir = await mkdtemp(join(tmpdir(), `dockfleet-${prefix}-`));
  const hubDir = join(dir, 'hub');
  const port = await freePort();
  const hub = await startTestHub({ dataDir: hubDir, port });
  const agent = spawnDockfleet(['agent', '--hub', hub.url, '--code', await mintCode(hub, node), '--state', join(dir, 'agent'), '--docker', engine.dockerHost, '--policy', join(dir, 'no-policy.json')]);
  await agent.waitForLine(new RegExp(`agent ${node} connected`));
  return { engine, hub, dir, hubDir, port, agent };
}

/** Stops what startNodeRig started; any part may be missing when `before` failed early. */
export async function stopNodeRig(rig: Partial<NodeRig>): Promise<void> {
  await rig.agent?.stop();
  await rig.hub?.stop();
  if (rig.engine) await stopEngines([rig.engine]);
  if (rig.dir) await rm(rig.dir, { recursive: true, force: true });
}
