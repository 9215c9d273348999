/**
 * What the host-replacement tests share (host-replace, host-rebuild-retry, host-rebuild-stall, host-replace-signed):
 * the CLI against the hub's data dir, fresh private engines, an agent process for NODE on one, and
 * the SHA-256 of every file in a directory. The tests keep their own hub and dirs (they restart
 * the hub midway): the helpers read them through `ctx` at each call.
 */
import { createHash } from 'node:crypto';
import { readdir, readFile, rm } from 'node:fs/promises';
import { join } from 'node:path';
import { BUSYBOX_IMAGE, startEngines, stopEngines, type TestEngine } from './engines.ts';
import { removeHubData, type TestHub } from './hub-fixture.ts';
import { spawnDockfleet, type DockfleetProcess } from './processes.ts';

export interface ReplaceRigContext {
  readonly node: string;
  readonly hub: TestHub | undefined;
  readonly hubDir: string;
  readonly policyFile: string;
  readonly engines: TestEngine[];
  readonly agents: DockfleetProcess[];
}

export function replaceRig(ctx: ReplaceRigContext) {
  return {
    /** `dockfleet ARGS --data HUBDIR`, with no hub URL or token from the environment. */
    async cli(...args: string[]): Promise<{ code: number | null; stdout: string; stderr: string }> {
      const p = spawnDockfleet([...args, '--data', ctx.hubDir], { DOCKFLEET_HUB: undefined, DOCKFLEET_TOKEN: undefined });
      const { code } = await p.exited;
      return { code, stdout: p.stdout(), stderr: p.stderr() };
    },
    async newEngine(prefix: string): Promise<TestEngine> {
      const [engine] = (await startEngines(1, { prefix })) as [TestEngine];
      ctx.engines.push(engine);
      return engine;
    },
    /** The node's current rebuild (GET /api/v1/nodes/NODE/rebuild), or null before there is one. */
    async rebuild(): Promise<any> {
      const res = await ctx.hub!.api('GET', `/api/v1/nodes/${encodeURIComponent(ctx.node)}/rebuild`);
      return res.status === 200 ? res.json : null;
    },
    /** After the tests: the agents, the hub, the engines, the hub's data (and its master key) and `dir` go. */
    async teardown(dir: string): Promise<void> {
      await Promise.allSettled(ctx.agents.map((a) => a.stop()));
      await ctx.hub?.stop();
      await stopEngines(ctx.engines);
      if (ctx.hubDir) await removeHubData(ctx.hubDir);
      if (dir) await rm(dir, { recursive: true, force: true });
    },
    /** An agent process for the node on `engine`, enrolled with `code` (or already enrolled in `stateDir`). */
    async startAgent(engine: TestEngine, stateDir: string, code?: string): Promise<DockfleetProcess> {
      const p = spawnDockfleet(['agent', '--hub', ctx.hub!.url, ...(code ? ['--code', code] : []), '--state', stateDir, '--docker', engine.dockerHost, '--policy', ctx.policyFile]);
      ctx.agents.push(p);
      await p.waitForLine(new RegExp(`agent ${ctx.node} connected`), 30_000);
      return p;
    },
  };
}

/** A stack whose container proves it sees its volume's data: it prints the SHA-256 of each file in /data at start. */
export const HASHING_STACK_COMPOSE = [
  'services:',
  '  app:',
  `    image: ${BUSYBOX_IMAGE}`,
  '    command: ["sh", "-c", "sha256sum /data/* ; sleep 3600"]',
  '    volumes:',
  '      - data:/data',
  'volumes:',
  '  data: {}',
  '',
].join('\n');

export const lastLine = (text: string): string => text.trim().split('\n').at(-1)!.trim();

/** File name → SHA-256 of each file directly in `root`. */
export async function fileHashes(root: string): Promise<Map<string, string>> {
  const out = new Map<string, string>();
  for (const name of (await readdir(root)).sort())
    out.set(
      name,
      createHash('sha256')
        .update(await readFile(join(root, name)))
        .digest('hex'),
    );
  return out;
}
