/** A real agent in this process (real TLS, real channel), stoppable, counting its connects. */
import { mkdtemp } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { agentConfigFrom } from '../../src/agent/config.ts';
import { runAgent } from '../../src/agent/run-agent.ts';
import { silentLogger } from '../../src/lib/logger.ts';

export const NO_ENGINE = 'unix:///nonexistent/dockfleet-test.sock';

export interface TestAgent {
  stateDir: string;
  connects: number;
  pending: number;
  /** Settles when the agent stops by itself (rejects with the reason) or is stopped. */
  done: Promise<void>;
  waitConnected(count?: number, timeoutMs?: number): Promise<void>;
  stop(): Promise<void>;
}

export async function startTestAgent(opts: { hubUrl: string; code?: string; name?: string; stateDir?: string; docker?: string; policy?: string }): Promise<TestAgent> {
  const stateDir = opts.stateDir ?? (await mkdtemp(join(tmpdir(), 'dockfleet-agent-')));
  const config = agentConfigFrom({
    hub: opts.hubUrl,
    code: opts.code,
    name: opts.name,
    state: stateDir,
    docker: opts.docker ?? NO_ENGINE,
    // A test never reads the machine's own policy file: the built-in defaults, or the one given.
    policy: opts.policy ?? join(stateDir, 'no-policy.json'),
  });
  const stop = new AbortController();
  const agent: TestAgent = {
    stateDir,
    connects: 0,
    pending: 0,
    done: Promise.resolve(),
    async waitConnected(count = 1, timeoutMs = 10_000) {
      const deadline = Date.now() + timeoutMs;
      let failed: unknown = null;
      agent.done.catch((e) => (failed = e));
      while (agent.connects < count) {
        if (failed) throw failed;
        if (Date.now() > deadline) throw new Error(`agent did not connect ${count}× within ${timeoutMs} ms`);
        await new Promise((r) => setTimeout(r, 20));
      }
    },
    async stop() {
      stop.abort();
      await agent.done.catch(() => {});
    },
  };
  agent.done = runAgent(config, silentLogger(), stop.signal, {
    onConnected: () => void agent.connects++,
    onPending: () => void agent.pending++,
  });
  agent.done.catch(() => {});
  return agent;
}
