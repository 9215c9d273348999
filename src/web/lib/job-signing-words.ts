/**
 * A signed job's failure in words (issue 13): the hub fails a job whose signature never came, whose
 * intent expired before its host was reached, or that its operator declined to sign, each with its
 * own code. The jobs list and a job's page show these as a badge beside "failed", so nobody has to
 * read an error code to know the job was never run for want of a signature.
 */
import type { JobView } from './types.ts';

const WORDS: Record<string, { label: string; hint: string }> = {
  signature_missing: { label: 'never signed', hint: 'no signature arrived within 5 minutes of filing; the host was never asked' },
  intent_expired: { label: 'signature expired', hint: 'its signature expired before the host was reached; deploy again' },
  signature_declined: { label: 'signature declined', hint: 'the operator declined to sign it' },
};
/** What a host refusing a job for its signature answers (agent/intent/intent-guard.ts). */
const HOST_REFUSAL = /this host requires signed intent/;
const NOT_SIGNED = { label: 'refused: not signed', hint: 'the host requires signed intent from a key its policy file lists, and the job carried none that it accepts' };

/** The badge's words and hint for a job that failed for want of a valid signature; null otherwise. */
export function signingFailure(job: Pick<JobView, 'state' | 'errorCode' | 'error'>): { label: string; hint: string } | null {
  if (job.state !== 'failed') return null;
  if (job.errorCode && WORDS[job.errorCode]) return WORDS[job.errorCode]!;
  return job.errorCode === 'forbidden' && HOST_REFUSAL.test(job.error ?? '') ? NOT_SIGNED : null;
}
