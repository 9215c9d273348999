/**
 * Signs the one job a volume command filed for signing (issue 14 × 13), after checking the hub's
 * proposal against what the user asked for: the proposal names exactly the job filed, for the
 * node asked; its signed body is canonical JSON; and every field equals the body computed here
 * (expected-job.ts). The bytes signed are the ones computed here. Any difference declines the job
 * at the hub, naming the field, and nothing is signed.
 */
import { createHash } from 'node:crypto';
import type { IntentSigner } from '../../lib/intent-keys.ts';
import { DockfleetError } from '../../protocol/errors.ts';
import { MAX_INTENT_LIFETIME_MS, canonicalJson, jobOp } from '../../protocol/intent.ts';
import { callHub, type HubTarget } from '../hub-client.ts';
import { firstDifference, parseCanonical } from '../stack-signing/compare-job.ts';
import { Difference, expectedPoliciesJob, expectedVolumeJob, type VolumeAsked } from './expected-job.ts';
import { readSignedPolicies, recordSignedPolicies } from './signed-policies.ts';

export interface VolumeSigning {
  jobs: Array<{ id: string; node: string; signedBody: string }>;
}

const refusal = (asked: VolumeAsked, what: string): DockfleetError => new DockfleetError('forbidden', `refusing to sign the ${asked.kind} job for node ${asked.node}: ${what}; nothing was signed`);

/** Checks, signs and hands the intent to the hub; on a refusal declines the job and throws. */
export async function signVolumeJob(
  target: HubTarget,
  filed: { id: string; signing?: VolumeSigning },
  asked: VolumeAsked,
  signer: IntentSigner,
  out: NodeJS.WritableStream = process.stderr,
): Promise<void> {
  try {
    const { body, after } = await check(filed, asked, out);
    const wire = signer.intent(asked.node, jobOp(asked.kind), `sha256:${createHash('sha256').update(body).digest('hex')}`, MAX_INTENT_LIFETIME_MS).wire;
    await after?.(signer.publicKey);
    await callHub(target, 'POST', `/api/v1/jobs/${encodeURIComponent(filed.id)}/intent`, { intent: wire });
    out.write(`signed the ${asked.kind} job with operator key ${signer.publicKey}\n`);
  } catch (err) {
    if (err instanceof DockfleetError && err.code === 'forbidden') {
      await callHub(target, 'POST', `/api/v1/jobs/${encodeURIComponent(filed.id)}/decline`, { reason: err.message.slice(0, 1_000) }).catch(() => undefined);
    }
    throw err;
  }
}

async function check(filed: { id: string; signing?: VolumeSigning }, asked: VolumeAsked, out: NodeJS.WritableStream): Promise<{ body: string; after?: (key: string) => Promise<void> }> {
  const jobs = filed.signing?.jobs;
  if (!jobs) throw new DockfleetError('forbidden', 'the hub did not file the job for signing (is it older than this CLI?); nothing was signed');
  if (jobs.length !== 1 || jobs[0]!.id !== filed.id) throw refusal(asked, `the hub proposed ${jobs.length} job(s) to sign, not the one it filed (${filed.id})`);
  const proposal = jobs[0]!;
  if (proposal.node !== asked.node) throw refusal(asked, `the hub's proposal is for node ${proposal.node}`);
  const proposed = parseCanonical(proposal.signedBody);
  if (!proposed) throw refusal(asked, 'its body is not canonical JSON');
  try {
    if (asked.kind !== 'volume-policies') return { body: compare(expectedVolumeJob(asked), proposed, proposal.signedBody) };
    const signed = await readSignedPolicies(asked.node);
    const { expected, policies, others } = expectedPoliciesJob(asked, proposed, signed);
    const body = compare(expected, proposed, proposal.signedBody);
    if (others.length > 0) {
      out.write(`--trust-hub: signing ${others.length} other backup polic${others.length === 1 ? 'y' : 'ies'} of ${asked.node} as the hub has them:\n`);
      for (const p of others) out.write(`  ${p.volume}: every ${p.every}, verify every ${p.verifyEvery}, ${p.repository ? JSON.stringify(p.repository) : "the host's repository"}\n`);
    }
    const revision = (expected.policies as { revision: number }).revision;
    return { body, after: (key) => recordSignedPolicies(asked.node, revision, policies, key) };
  } catch (err) {
    if (err instanceof Difference) throw refusal(asked, `the hub's ${err.field} ${err.why}`);
    throw err;
  }
}

/** The canonical bytes of `expected`, once every field of the proposal equals it. */
function compare(expected: Record<string, unknown>, proposed: Record<string, unknown>, signedBody: string): string {
  const field = firstDifference(expected, proposed, '');
  if (field !== null) throw new Difference(field);
  const body = canonicalJson(expected);
  if (body !== signedBody) throw new Difference('job body', 'is not in canonical form');
  return body;
}
