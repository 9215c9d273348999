/**
 * A real agent process for crash tests: `node --import tsx job-agent-entry.ts` with its
 * settings in DOCKFLEET_TEST_JOB_AGENT (JSON: hub, code, name, state, markers, stepMs). Its
 * jobs go to a marker runner: each step writes MARKERS/ID.STEP.start before and ID.STEP.done
 * after sleeping stepMs, and a resumed run skips the steps already done (as a real applier
 * converges). Each run writes ID.run.N with whether it was resumed and the SHA-256 of the secret
 * value it was given (proof it had the secret, without writing the secret). Prints
 * `connected NODE` on each connect.
 */
import { createHash } from 'node:crypto';
import { access, readdir, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { agentConfigFrom } from '../../src/agent/config.ts';
import type { StackJobRunner } from '../../src/agent/jobs/job-runner.ts';
import { runAgent } from '../../src/agent/run-agent.ts';
import { silentLogger } from '../../src/lib/logger.ts';
import { NO_ENGINE } from './agent-fixture.ts';

const settings = JSON.parse(process.env.DOCKFLEET_TEST_JOB_AGENT ?? '{}') as { hub: string; code?: string; name: string; state: string; markers: string; stepMs: number };
const STEPS = ['snapshot', 'apply', 'gate'];

const exists = (path: string): Promise<boolean> =>
  access(path).then(
    () => true,
    () => false,
  );

const markerRunner: StackJobRunner = {
  async run(job, ctx) {
    const startedAt = Date.now();
    const runs = (await readdir(settings.markers)).filter((n) => n.startsWith(`${job.id}.run.`)).length;
    const secretHash = createHash('sha256')
      .update(job.secrets.env.API_TOKEN ?? '')
      .digest('hex');
    await writeFile(join(settings.markers, `${job.id}.run.${runs + 1}`), JSON.stringify({ resumed: ctx.resumed, secretHash, pid: process.pid }));
    for (const step of STEPS) {
      const done = join(settings.markers, `${job.id}.${step}.done`);
      if (ctx.resumed && (await exists(done))) continue;
      await ctx.step(step, async () => {
        await writeFile(join(settings.markers, `${job.id}.${step}.start.${process.pid}`), '');
        await new Promise((r) => setTimeout(r, settings.stepMs));
        await writeFile(done, '');
      });
    }
    return { state: 'succeeded', error: null, revision: job.target?.revision ?? 0, rolledBack: false, startedAt, finishedAt: Date.now() };
  },
};

const config = agentConfigFrom({ hub: settings.hub, code: settings.code, name: settings.name, state: settings.state, docker: NO_ENGINE, policy: join(settings.state, 'no-policy.json') });
const stop = new AbortController();
process.once('SIGTERM', () => stop.abort());
runAgent(config, silentLogger(), stop.signal, { runner: markerRunner, onConnected: (node) => console.log(`connected ${node}`) }).then(
  () => process.exit(0),
  (err: unknown) => {
    console.error(err);
    process.exit(1);
  },
);
