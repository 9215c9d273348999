/**
 * What `dockfleet node rebuild NAME --sign` reads (issue 14 × 13): for each step of a host
 * rebuild that waits for the operator's signature, the step as the rebuild record has it (the
 * volume and repository it restores, or the stack and revision it deploys) and the job filed for
 * it, with the exact body the intent must sign (jobSignedBody). The CLI checks the one against
 * the other before signing. `GET /api/v1/nodes/NAME/rebuild/signing`, admins and operators only.
 *
 * No secret is shown: a volume job's signed body leaves out the hub-kept file (which also carries
 * a password given with --replace) and the escrowed key with its recovery code (signableJob).
 * A deploy's body carries the stack revision's own secrets, as `stack deploy|rollback --sign`
 * proposals do: the signature covers them, so the signer must see what it signs.
 */
import type { BackupRepository } from '../../protocol/volume-backup.ts';
import type { JobKind } from '../../protocol/jobs.ts';
import type { JobQueue } from '../jobs/job-queue.ts';
import type { RebuildRecord } from './rebuild-record.ts';

export interface RebuildSigningJob {
  /** The job to sign: `POST /api/v1/jobs/ID/intent`, or `…/decline`. */
  id: string;
  node: string;
  kind: JobKind;
  signedBody: string;
}

export type RebuildSigningStep =
  | { step: 'volume'; volume: string; repository: BackupRepository | null; repositoryLabel: string | null; snapshot: string | null; job: RebuildSigningJob }
  | { step: 'stack'; stack: string; revision: number; job: RebuildSigningJob };

export interface RebuildSigning {
  rebuild: string;
  node: string;
  state: RebuildRecord['state'];
  steps: RebuildSigningStep[];
}

/** The steps of `record` whose job (named in `awaiting`, by `volume:NAME` or `stack:NAME`) still awaits its signature. */
export async function signingView(record: RebuildRecord, awaiting: ReadonlyMap<string, string>, jobs: JobQueue): Promise<RebuildSigning> {
  const steps: RebuildSigningStep[] = [];
  const jobFor = async (key: string): Promise<RebuildSigningJob | null> => {
    const id = awaiting.get(key);
    const job = id === undefined ? null : await jobs.get(id);
    if (job?.state !== 'awaiting-signature') return null;
    return { id: job.id, node: job.node, kind: job.kind, signedBody: await jobs.signedBody(job.id) };
  };
  for (const v of record.volumes) {
    const job = v.state === 'awaiting-signature' ? await jobFor(`volume:${v.volume}`) : null;
    if (job) steps.push({ step: 'volume', volume: v.volume, repository: v.repository, repositoryLabel: v.repositoryLabel, snapshot: v.snapshot, job });
  }
  for (const s of record.stacks) {
    const job = s.state === 'awaiting-signature' ? await jobFor(`stack:${s.stack}`) : null;
    if (job) steps.push({ step: 'stack', stack: s.stack, revision: s.revision, job });
  }
  return { rebuild: record.id, node: record.node, state: record.state, steps };
}
