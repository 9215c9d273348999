/**
 * What the CLI expects a volume job's signed body to be (issue 14 × 13), built from what the
 * user asked for and nothing the hub said: the kind, node, volume, repository, retention,
 * snapshot, target volume and escrow recipient; no secrets (these commands send none, so any the
 * hub adds is a difference). A `volume-policies` job carries the node's whole set: the asked
 * volume's policy as asked (its `setAt`, the hub's clock, checked for form only), the others as
 * this CLI signed them last (signed-policies.ts), and a revision above the last one it signed.
 */
import type { JobKind } from '../../protocol/jobs.ts';
import type { BackupRepository, BackupRetention, VolumeBackupPolicy, VolumeJobSpec } from '../../protocol/volume-backup.ts';
import type { ProposedJob } from '../stack-signing/compare-job.ts';
import type { SignedPolicies } from './signed-policies.ts';

export type VolumeJobKind = Extract<JobKind, 'volume-backup' | 'volume-restore' | 'volume-snapshots'>;

/** The policy a `volume policy` command sets, as the hub stores it less its `setAt`. */
export interface AskedPolicy {
  every: string;
  retention: BackupRetention;
  repository: BackupRepository | null;
  verifyEvery: string;
}

export type VolumeAsked = { kind: VolumeJobKind; node: string; spec: VolumeJobSpec } | { kind: 'volume-policies'; node: string; volume: string; policy: AskedPolicy | null; trustHub: boolean };

/** A refusal with the field that differs (its path in the signed body). */
export class Difference extends Error {
  constructor(
    readonly field: string,
    readonly why = 'differs from what this CLI asked for',
  ) {
    super(`${field} ${why}`);
  }
}

const NO_SECRETS = { env: {}, files: {} };

export function expectedVolumeJob(asked: Extract<VolumeAsked, { kind: VolumeJobKind }>): Record<string, unknown> {
  return { kind: asked.kind, node: asked.node, stack: '', target: null, secrets: NO_SECRETS, volume: asked.spec };
}

const SET_AT_FORM = (v: unknown): v is number => typeof v === 'number' && Number.isSafeInteger(v) && v >= 0;

/**
 * The expected policies job, given the hub's proposal (for its revision, order and setAt) and this
 * CLI's record. `others` lists the other volumes' policies the hub's set holds, for --trust-hub.
 */
export function expectedPoliciesJob(
  asked: Extract<VolumeAsked, { kind: 'volume-policies' }>,
  proposed: ProposedJob,
  signed: SignedPolicies | null,
): { expected: Record<string, unknown>; policies: VolumeBackupPolicy[]; others: VolumeBackupPolicy[] } {
  const set = proposed.policies as { revision?: unknown; policies?: unknown } | null | undefined;
  if (set === null || typeof set !== 'object' || !Array.isArray(set.policies)) throw new Difference('policies', 'is not a policy set');
  const revision = set.revision;
  if (typeof revision !== 'number' || !Number.isSafeInteger(revision) || revision < 1) throw new Difference('policies.revision', 'is not in its form');
  if (signed && revision <= signed.revision) throw new Difference('policies.revision', `is not above revision ${signed.revision}, which this CLI signed before`);
  const entries = set.policies as Array<Record<string, unknown>>;
  const known = new Map((signed?.policies ?? []).map((p) => [p.volume, p]));
  const policies: VolumeBackupPolicy[] = [];
  const others: VolumeBackupPolicy[] = [];
  entries.forEach((entry, i) => {
    const volume = entry?.volume;
    if (volume === asked.volume) {
      if (!asked.policy) throw new Difference(`policies.policies[${i}]`, `keeps a policy for ${asked.volume}, which this command removes`);
      if (!SET_AT_FORM(entry.setAt)) throw new Difference(`policies.policies[${i}].setAt`, 'is not in its form');
      policies.push({ volume: asked.volume, ...asked.policy, setAt: entry.setAt });
      return;
    }
    const before = typeof volume === 'string' ? known.get(volume) : undefined;
    if (before) policies.push(before);
    else if (asked.trustHub) {
      policies.push(entry as unknown as VolumeBackupPolicy);
      others.push(entry as unknown as VolumeBackupPolicy);
    } else {
      throw new Difference(`policies.policies[${i}]`, `(volume ${String(volume)}) is not one this CLI signed before (pass --trust-hub to sign the hub's other policies as they are)`);
    }
  });
  if (asked.policy && !entries.some((e) => e?.volume === asked.volume)) throw new Difference('policies.policies', `has no policy for ${asked.volume}`);
  if (!asked.trustHub) {
    for (const volume of known.keys()) {
      if (volume !== asked.volume && !entries.some((e) => e?.volume === volume)) {
        throw new Difference('policies.policies', `drops the policy of ${volume}, which this CLI signed before (pass --trust-hub to sign the set as the hub has it)`);
      }
    }
  }
  return {
    expected: { kind: 'volume-policies', node: asked.node, stack: '', target: null, secrets: NO_SECRETS, policies: { revision, policies } },
    policies,
    others,
  };
}
