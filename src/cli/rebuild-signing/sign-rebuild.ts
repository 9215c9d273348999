/**
 * `dockfleet node rebuild NAME --sign [--wait]` (issue 14 × 13): signs the jobs a host rebuild
 * waits on, on a replacement that requires signed intent. Each pass reads the rebuild record and
 * the steps waiting for a signature (GET /api/v1/nodes/NAME/rebuild/signing), checks every job
 * against its step (expected-step.ts) and only then signs them, one line per job on stderr. A job
 * that is not what its step says is declined at the hub naming the field, nothing of that pass
 * is signed, and the command fails. With `wait` it keeps signing steps as they come (the deploys
 * are filed once the restores finished) until the rebuild is done or failed.
 */
import { createHash } from 'node:crypto';
import type { IntentSigner } from '../../lib/intent-keys.ts';
import { DockfleetError } from '../../protocol/errors.ts';
import { MAX_INTENT_LIFETIME_MS, jobOp } from '../../protocol/intent.ts';
import type { StackRevision } from '../../protocol/stacks.ts';
import { callHub, type HubTarget } from '../hub-client.ts';
import { recordSigned, type JobSecretsShape } from '../stack-signing/signed-revisions.ts';
import { Difference } from '../volume-signing/expected-job.ts';
import { checkStep, type CheckedStep, type SigningStep } from './expected-step.ts';

interface RebuildView {
  id: string;
  state: 'restoring' | 'deploying' | 'done' | 'failed';
  error: string | null;
  volumes: Array<{ volume: string; job: string | null; state: string }>;
  stacks: Array<{ stack: string; revision: number; state: string }>;
}

interface Signing {
  rebuild: string;
  steps: SigningStep[];
}

export interface SignRebuildOptions {
  wait: boolean;
  out?: NodeJS.WritableStream;
  pollMs?: number;
}

/** Signs what the rebuild of `node` waits on (and, with `wait`, what comes later); throws when it fails or a job is refused. */
export async function signRebuild(target: HubTarget, node: string, signer: IntentSigner, opts: SignRebuildOptions): Promise<void> {
  const out = opts.out ?? process.stderr;
  const base = `/api/v1/nodes/${encodeURIComponent(node)}/rebuild`;
  let signed = 0;
  for (;;) {
    const record = (await callHub(target, 'GET', base)) as RebuildView;
    if (record.state === 'failed' && (opts.wait || signed > 0)) throw new Error(`the rebuild of ${node} failed: ${record.error ?? 'no reason given'}`);
    if (record.state === 'done' && (opts.wait || signed > 0)) {
      out.write(`the rebuild of ${node} is done\n`);
      return;
    }
    const signing = (await callHub(target, 'GET', `${base}/signing`)) as Signing;
    const steps = signing.rebuild === record.id ? signing.steps.filter((s) => stillWaits(record, s)) : [];
    signed += await signSteps(target, node, steps, signer, out);
    if (!opts.wait) {
      if (signed === 0)
        out.write(
          `nothing of ${node}'s rebuild waits for a signature now (it is ${record.state}${record.state === 'done' || record.state === 'failed' ? '' : '; pass --wait to sign its steps as they come'})\n`,
        );
      return;
    }
    await new Promise((r) => setTimeout(r, opts.pollMs ?? 1_000));
  }
}

/** Whether the public record agrees the step waits (the same job, the same revision): a step that moved on meanwhile is left alone. */
function stillWaits(record: RebuildView, step: SigningStep): boolean {
  if (step.step === 'volume') return record.volumes.some((v) => v.volume === step.volume && v.state === 'awaiting-signature' && v.job === step.job.id);
  return record.stacks.some((s) => s.stack === step.stack && s.state === 'awaiting-signature' && s.revision === step.revision);
}

/** Checks every step first; signs them all, or declines the ones that differ and signs none. The number signed. */
async function signSteps(target: HubTarget, node: string, steps: SigningStep[], signer: IntentSigner, out: NodeJS.WritableStream): Promise<number> {
  const checked: Array<{ step: SigningStep; ok: CheckedStep }> = [];
  const refused: string[] = [];
  for (const step of steps) {
    try {
      checked.push({ step, ok: await checkStep(node, step) });
    } catch (err) {
      if (!(err instanceof Difference)) throw err;
      const reason = `refusing to sign the ${step.job.kind} job ${step.job.id} of ${node}'s rebuild (${step.step} ${step.step === 'volume' ? step.volume : step.stack}): the hub's ${err.field} ${err.why}; nothing was signed`;
      refused.push(reason);
      await callHub(target, 'POST', `/api/v1/jobs/${encodeURIComponent(step.job.id)}/decline`, { reason: reason.slice(0, 1_000) }).catch(() => undefined);
    }
  }
  if (refused.length > 0) throw new DockfleetError('forbidden', refused.join('\n'));
  let signed = 0;
  for (const { step, ok } of checked) {
    for (const line of ok.notes) out.write(`${line}\n`);
    const wire = signer.intent(node, jobOp(step.job.kind), `sha256:${createHash('sha256').update(ok.body).digest('hex')}`, MAX_INTENT_LIFETIME_MS).wire;
    if (step.step === 'stack') {
      const job = JSON.parse(ok.body) as { target: StackRevision; secrets: JobSecretsShape };
      await recordSigned(job.target, job.secrets, [node], signer.publicKey);
    }
    await callHub(target, 'POST', `/api/v1/jobs/${encodeURIComponent(step.job.id)}/intent`, { intent: wire });
    out.write(`signed: ${ok.does} on ${node} (job ${step.job.id}, operator key ${signer.publicKey})\n`);
    signed++;
  }
  return signed;
}
