/**
 * The replica list between hub and agent (issue 17), in process with real TLS and real links:
 * - a hub that hands out no list (a single hub, or one that predates the list) still works: the
 *   agent keeps no list and keeps dialling its one hub, also after that hub restarts;
 * - a hub whose list changes pushes it to its linked agents, which keep it in their state dir;
 * - an agent that predates the list reads a welcome carrying one as before.
 */
import assert from 'node:assert/strict';
import { existsSync } from 'node:fs';
import { readFile, rm } from 'node:fs/promises';
import { join } from 'node:path';
import { after, describe, it } from 'node:test';
import { parseFrame, welcomeFrame } from '../src/protocol/handshake.ts';
import { startTestAgent, type TestAgent } from './support/agent-fixture.ts';
import { mintCode, nodeStatus, removeHubData, startTestHub, type TestHub, waitFor } from './support/hub-fixture.ts';
import { freePort } from './support/processes.ts';

const cleanups: Array<() => Promise<void>> = [];
after(async () => {
  for (const c of cleanups.reverse()) await c().catch(() => {});
});

describe('replica list', { timeout: 60_000 }, () => {
  it('a hub without a list: the agent keeps none and redials its one hub after it restarts', async () => {
    const port = await freePort();
    let hub: TestHub = await startTestHub({ port });
    const dataDir = hub.dataDir;
    cleanups.push(async () => {
      await hub.stop();
      await removeHubData(dataDir);
    });
    const agent: TestAgent = await startTestAgent({ hubUrl: hub.url, code: await mintCode(hub, 'solo'), name: 'solo' });
    cleanups.push(async () => {
      await agent.stop();
      await rm(agent.stateDir, { recursive: true, force: true });
    });
    await agent.waitConnected(1);
    assert.equal(existsSync(join(agent.stateDir, 'replicas.json')), false, 'no list from a single hub');
    await hub.stop({ keepData: true });
    hub = await startTestHub({ port, dataDir });
    await agent.waitConnected(2, 20_000);
    await waitFor(async () => (await nodeStatus(hub, 'solo')) === 'online', 10_000, 'the agent back on its hub');
  });

  it('a changed list is pushed to the agents linked to the hub, which keep it', async () => {
    let list: string[] = [];
    const hub = await startTestHub({ run: { agentReplicas: () => list } });
    cleanups.push(() => hub.stop());
    list = [hub.url, 'https://replica-2.example:7443'];
    const agent = await startTestAgent({ hubUrl: hub.url, code: await mintCode(hub, 'pushed'), name: 'pushed' });
    cleanups.push(async () => {
      await agent.stop();
      await rm(agent.stateDir, { recursive: true, force: true });
    });
    await agent.waitConnected(1);
    const kept = async (): Promise<string[]> => JSON.parse(await readFile(join(agent.stateDir, 'replicas.json'), 'utf8')).replicas;
    assert.deepEqual(await kept(), list);
    list = [hub.url, 'https://replica-2.example:7443', 'https://replica-3.example:7443'];
    hub.hub.gateway.pushReplicas();
    await waitFor(async () => (await kept()).length === 3, 5_000, 'the pushed list in the agent state dir');
    assert.deepEqual(await kept(), list);
    assert.equal(agent.connects, 1, 'the push rides on the link; no reconnect');
  });

  it('an agent that predates the list reads a welcome carrying one as before', () => {
    const line = JSON.stringify({ t: 'welcome', v: 1, node: 'n', heartbeatMs: 3000, deadAfterMs: 9000, replicas: ['https://a.example:7443'] });
    const oldSchema = welcomeFrame.omit({ replicas: true });
    assert.deepEqual(parseFrame(oldSchema, line), { t: 'welcome', v: 1, node: 'n', heartbeatMs: 3000, deadAfterMs: 9000 });
    assert.equal(parseFrame(welcomeFrame, JSON.stringify({ t: 'welcome', v: 1, node: 'n', heartbeatMs: 3000, deadAfterMs: 9000, replicas: ['http://plain.example'] })), null);
  });
});
