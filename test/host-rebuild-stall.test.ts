/**
 * A rebuild whose replacement enrolls and never connects (issue 14, item 6): it does not wait
 * without end. A real hub in this process with the agent-link wait shortened to 3 s; the node
 * enrolled, then a replacement enrolled with a `--replace` code through the agent's own
 * enrollment exchange (so the identity is on disk, but no agent runs and nothing links). The
 * rebuild fails in words that say what to do, and its alert opens; then the agent is started on
 * that identity and the rebuild retried: it proceeds (nothing to restore or deploy: `done`) and
 * the alert clears.
 */
import assert from 'node:assert/strict';
import { mkdtemp, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, test } from 'node:test';
import { enrollAgent } from '../src/agent/enroll.ts';
import type { TestEngine } from './support/engines.ts';
import { mintCode, startTestHub, waitFor, type TestHub } from './support/hub-fixture.ts';
import type { DockfleetProcess } from './support/processes.ts';
import { replaceRig } from './support/replace-rig.ts';

const NODE = 'stall-01';
const LINK_WAIT_MS = 3_000;

let hub: TestHub | undefined;
let dir = '';
let hubDir = '';
let policyFile = '';
const engines: TestEngine[] = [];
const agents: DockfleetProcess[] = [];

const { newEngine, startAgent, rebuild, teardown } = replaceRig({
  node: NODE,
  engines,
  agents,
  get hub() {
    return hub;
  },
  get hubDir() {
    return hubDir;
  },
  get policyFile() {
    return policyFile;
  },
});

async function openRebuildAlerts(): Promise<any[]> {
  const res = await hub!.api('GET', '/api/v1/alerts');
  return (res.json as any[]).filter((i) => i.key === `host-rebuild:${NODE}` && i.state === 'open');
}

describe('a rebuild whose replacement never connects', { timeout: 120_000 }, () => {
  before(async () => {
    dir = await mkdtemp(join(tmpdir(), 'dockfleet-rebuild-stall-'));
    hubDir = join(dir, 'hub');
    policyFile = join(dir, 'policy.json');
    await writeFile(policyFile, '{}');
    hub = await startTestHub({ dataDir: hubDir, run: { rebuildTuning: { linkWaitMs: LINK_WAIT_MS, pollMs: 100 } } });
  });

  after(() => teardown(dir));

  test('fails after the link wait with what to do, and a retry once the agent is up ends done', async () => {
    const hubUrl = new URL(hub!.url);
    await enrollAgent({ hubUrl, code: await mintCode(hub!, NODE), stateDir: join(dir, 'agent-a') });

    // The replacement enrolls (the agent's own exchange) and nothing more: no agent runs on it.
    const minted = await hub!.api('POST', '/api/v1/enrollments', { name: NODE, replace: true });
    assert.equal(minted.status, 201, JSON.stringify(minted.json));
    const stateB = join(dir, 'agent-b');
    const enrolledAt = Date.now();
    await enrollAgent({ hubUrl, code: minted.json.code, stateDir: stateB });

    const waiting = await waitFor(
      async () => {
        const r = await rebuild();
        return r?.waiting ? r : null;
      },
      5_000,
      'the rebuild to wait for the agent',
    );
    assert.equal(waiting.state, 'restoring');
    assert.match(waiting.waiting, /waits for node stall-01's agent to connect .*within 3 s/);

    const failed = await waitFor(
      async () => {
        const r = await rebuild();
        return r?.state === 'failed' ? r : null;
      },
      15_000,
      'the rebuild to fail',
      100,
    );
    assert.ok(Date.now() - enrolledAt >= LINK_WAIT_MS, 'not before the wait passed');
    assert.equal(failed.error, 'the replacement host for stall-01 enrolled but did not connect within 3 s; start its agent, then run `dockfleet node rebuild stall-01`');
    assert.equal(failed.waiting, null);
    const [alert] = await waitFor(
      async () => {
        const a = await openRebuildAlerts();
        return a.length === 1 ? a : null;
      },
      10_000,
      'the rebuild alert',
    );
    assert.match(alert.detail, /did not connect within 3 s; start its agent/);

    // The operator starts the agent on the replacement, then retries: the rebuild proceeds.
    const engine = await newEngine('stall');
    await startAgent(engine, stateB);
    const retried = await hub!.api('POST', `/api/v1/nodes/${NODE}/rebuild`, {});
    assert.equal(retried.status, 202, JSON.stringify(retried.json));
    assert.notEqual(retried.json.id, failed.id);
    const done = await waitFor(
      async () => {
        const r = await rebuild();
        return r?.state === 'done' ? r : null;
      },
      10_000,
      'the retried rebuild to end',
      100,
    );
    assert.equal(done.error, null);
    assert.equal(done.waiting, null);
    await waitFor(async () => (await openRebuildAlerts()).length === 0, 10_000, 'the rebuild alert to clear');
  });
});
