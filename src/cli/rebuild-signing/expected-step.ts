/**
 * What the CLI expects the job of one waiting rebuild step to be (issue 14 × 13), built from the
 * rebuild's record and nothing else the hub proposes: a volume step's restore is the
 * `volume-restore` of that volume into itself, from the record's repository (and snapshot, when
 * it names one; else the latest), carrying no secret the signer could see; a stack step's deploy
 * is the `deploy` of that stack at the record's revision to this node. A deploy's project, gate,
 * digest and secrets are the ones this CLI signed for that revision before (signed-revisions.ts);
 * a revision it never signed (deployed before the host required signatures) is taken as the hub
 * has it, checked for form, and shown.
 */
import { canonicalJson } from '../../protocol/intent.ts';
import { healthGate, stackProject } from '../../protocol/stacks.ts';
import type { BackupRepository } from '../../protocol/volume-backup.ts';
import { firstDifference, hubAssigned, parseCanonical, type ProposedJob } from '../stack-signing/compare-job.ts';
import { readSigned, secretsDigest, type JobSecretsShape } from '../stack-signing/signed-revisions.ts';
import { Difference, expectedVolumeJob } from '../volume-signing/expected-job.ts';

/** One step of `GET /api/v1/nodes/NAME/rebuild/signing` (hub/rebuild/rebuild-signing.ts). */
export type SigningStep =
  | { step: 'volume'; volume: string; repository: BackupRepository | null; repositoryLabel: string | null; snapshot: string | null; job: ProposalJob }
  | { step: 'stack'; stack: string; revision: number; job: ProposalJob };

export interface ProposalJob {
  id: string;
  node: string;
  kind: string;
  signedBody: string;
}

/** A step checked: the bytes to sign, what they do (for people), and anything shown beyond that. */
export interface CheckedStep {
  body: string;
  does: string;
  notes: string[];
}

/** Checks the job of `step` for node `node`; throws Difference naming the first field that is not as expected. */
export async function checkStep(node: string, step: SigningStep): Promise<CheckedStep> {
  const { job } = step;
  if (job.node !== node) throw new Difference('node', `is ${job.node}, and the rebuild is of ${node}`);
  const kind = step.step === 'volume' ? 'volume-restore' : 'deploy';
  if (job.kind !== kind) throw new Difference('kind', `is ${job.kind}, and the step is a ${kind}`);
  const proposed = parseCanonical(job.signedBody);
  if (!proposed) throw new Difference('job body', 'is not canonical JSON');
  const { expected, does, notes } = step.step === 'volume' ? volumeExpectation(node, step) : await deployExpectation(node, step, proposed);
  const field = firstDifference(expected, proposed, '');
  if (field !== null) throw new Difference(field, 'differs from what the rebuild record says');
  const body = canonicalJson(expected);
  if (body !== job.signedBody) throw new Difference('job body', 'is not in canonical form');
  return { body, does, notes };
}

function volumeExpectation(node: string, step: Extract<SigningStep, { step: 'volume' }>): { expected: Record<string, unknown>; does: string; notes: string[] } {
  const spec = { volume: step.volume, repository: step.repository, to: step.volume, ...(step.snapshot === null ? {} : { snapshot: step.snapshot }) };
  const where = step.repositoryLabel ?? (step.repository === null ? "the host's own repository" : JSON.stringify(step.repository));
  const from = step.snapshot === null ? 'the latest snapshot' : `snapshot ${step.snapshot}`;
  return { expected: expectedVolumeJob({ kind: 'volume-restore', node, spec }), does: `restore volume ${step.volume} from ${from} of repository ${where}`, notes: [] };
}

async function deployExpectation(node: string, step: Extract<SigningStep, { step: 'stack' }>, proposed: ProposedJob): Promise<{ expected: Record<string, unknown>; does: string; notes: string[] }> {
  const assigned = hubAssigned(proposed);
  if (!assigned.ok) throw new Difference(assigned.field, 'is not in its form');
  if (assigned.revision !== step.revision) throw new Difference('target.revision', `is ${assigned.revision}, and the rebuild deploys revision ${step.revision}`);
  const does = `deploy stack ${step.stack} revision ${step.revision}`;
  const target = proposed.target as Record<string, unknown>;
  const secrets = proposed.secrets as JobSecretsShape;
  if (!isSecrets(secrets)) throw new Difference('secrets', 'is not in its form');
  const signed = await readSigned(step.stack, step.revision);
  if (signed) {
    if (secretsDigest(secrets, signed.secrets.salt) !== signed.secrets.sha256) throw new Difference('secrets', `differ from those revision ${step.revision} was signed with`);
    return {
      expected: { kind: 'deploy', node, stack: step.stack, target: { stack: step.stack, revision: step.revision, project: signed.project, gate: signed.gate, digest: signed.digest }, secrets },
      does,
      notes: [],
    };
  }
  const project = stackProject.safeParse(target.project);
  if (!project.success) throw new Difference('target.project', 'is not a stack project');
  const gate = healthGate.safeParse(target.gate);
  if (!gate.success) throw new Difference('target.gate', 'is not a health gate');
  const notes = [`this CLI never signed revision ${step.revision} of ${step.stack} (it was deployed unsigned); signing it as the hub has it:`];
  for (const [name, service] of Object.entries(project.data.services)) notes.push(`  ${name}: ${service.image}`);
  const names = Object.keys(secrets.env).concat(Object.keys(secrets.files));
  if (names.length > 0) notes.push(`  with its secrets ${names.sort().join(', ')}`);
  return {
    expected: { kind: 'deploy', node, stack: step.stack, target: { stack: step.stack, revision: step.revision, project: target.project, gate: target.gate, digest: assigned.digest }, secrets },
    does,
    notes,
  };
}

function isSecrets(v: unknown): v is JobSecretsShape {
  const strings = (o: unknown): boolean => o !== null && typeof o === 'object' && !Array.isArray(o) && Object.values(o).every((x) => typeof x === 'string');
  return v !== null && typeof v === 'object' && strings((v as JobSecretsShape).env) && strings((v as JobSecretsShape).files);
}
