/**
 * Deadlines of signed jobs (issue 13), for the dispatcher: a job filed for signing fails when its
 * signature has not come within SIGNATURE_WAIT_MS, and a signed job whose intent expires before
 * it reaches its host fails with a reason that says what to do. Both are final: the host would
 * refuse such a job anyway, and a clear failure on the hub beats a job that waits for nothing.
 */
import { decodeIntent } from '../../protocol/intent.ts';
import type { JobRecord } from '../../store/job-store.ts';
import type { JobQueue } from './job-queue.ts';

export const INTENT_EXPIRED_CODE = 'intent_expired';
export const SIGNATURE_MISSING_CODE = 'signature_missing';
export const INTENT_EXPIRED_MESSAGE = 'its signature expired before the host was reached: deploy again';

/** When the job's signed intent expires (ms), or null for an unsigned job. */
export function intentExpiry(job: Pick<JobRecord, 'intent'>): number | null {
  if (job.intent === null) return null;
  const decoded = decodeIntent(job.intent);
  return decoded.ok ? decoded.intent.claims.exp : 0;
}

/**
 * Fails a job never delivered whose intent has expired; true when it did (it must not be sent).
 * A job delivered before is sent again: the host may have it in its ledger (and answers from it),
 * or refuses it for its expired intent itself.
 */
export async function failIfIntentExpired(queue: JobQueue, job: JobRecord, now = Date.now()): Promise<boolean> {
  const exp = intentExpiry(job);
  if (exp === null || exp > now || job.state !== 'queued' || job.attempts > 0) return false;
  await queue.finish(job.id, { errorCode: INTENT_EXPIRED_CODE, error: INTENT_EXPIRED_MESSAGE });
  return true;
}

/** Fails every job past its signing deadline, or held with an expired intent; returns how many. */
export async function sweepSigningDeadlines(queue: JobQueue, now = Date.now()): Promise<number> {
  let failed = 0;
  for (const job of await queue.signingJobs()) {
    if (job.state === 'awaiting-signature' && job.signBy !== null && job.signBy <= now) {
      const ok = await queue.finish(job.id, { errorCode: SIGNATURE_MISSING_CODE, error: 'no signature arrived within 5 minutes of filing: deploy again' });
      if (ok) failed++;
    } else if (await failIfIntentExpired(queue, job, now)) failed++;
  }
  return failed;
}
