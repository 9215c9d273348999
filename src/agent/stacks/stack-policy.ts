/** The host's policy as the stack applier asks it: the same gate the Docker gateway uses, for
 * every call the gateway would judge, before the call is made. */
import type { PolicyVerdict } from '../policy/policy.ts';

export interface StackPolicy {
  check(method: string, path: string, body: Buffer | null): Promise<PolicyVerdict>;
}

/** Asks the gate; a refusal becomes the reason string, an allowance null. */
export async function refusal(policy: StackPolicy, method: string, path: string, body?: unknown): Promise<string | null> {
  const verdict = await policy.check(method, path, body === undefined ? Buffer.alloc(0) : Buffer.from(JSON.stringify(body)));
  return verdict.allowed ? null : verdict.reason;
}
