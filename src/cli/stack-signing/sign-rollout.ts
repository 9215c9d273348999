/**
 * Signs the jobs of a rollout the hub filed for signing (issue 13), after checking each one
 * against what the user asked for: a deploy against the Compose file parsed here with the hub's
 * own parser, the secret values given here, the stack, kind, nodes, order and gate; a rollback
 * against this CLI's record of the revision it signed then (signed-revisions.ts); a removal
 * against the stack's name. Any difference refuses the whole rollout before anything is signed.
 * Each intent lives five minutes at most; a job that reaches its host later fails saying so.
 */
import { createHash } from 'node:crypto';
import type { IntentSigner } from '../../lib/intent-keys.ts';
import { DockfleetError } from '../../protocol/errors.ts';
import { MAX_INTENT_LIFETIME_MS, canonicalJson, jobOp } from '../../protocol/intent.ts';
import type { RolloutStarted, SigningProposal } from '../../protocol/stack-api.ts';
import type { HealthGate, StackProject, StackRevision } from '../../protocol/stacks.ts';
import { callHub, type HubTarget } from '../hub-client.ts';
import { firstDifference, hubAssigned, parseCanonical, refusal, type ProposedJob } from './compare-job.ts';
import { readSigned, recordSigned, secretsDigest, signedNodes, type JobSecretsShape } from './signed-revisions.ts';

/** What the user asked for, as the CLI knows it. */
export type Asked =
  | { kind: 'deploy'; stack: string; project: StackProject; gate: HealthGate; secrets: JobSecretsShape; parallel: number; nodes: string[] | null }
  | { kind: 'rollback'; stack: string; to: number | null; trustHub: boolean }
  | { kind: 'remove'; stack: string };

const fail = (message: string): never => {
  throw new DockfleetError('forbidden', message);
};

/**
 * Checks the whole proposal, signs every job, records what was signed, then hands the intents to
 * the hub. On a refusal the jobs are declined (an honest hub ends the rollout at once; any other
 * fails them when their signatures are 5 minutes overdue) and the refusal is thrown.
 */
export async function signRollout(target: HubTarget, started: RolloutStarted, asked: Asked, signer: IntentSigner, out: NodeJS.WritableStream = process.stderr): Promise<void> {
  const proposal = started.signing;
  if (!proposal) return fail('the hub did not file the jobs for signing (is it older than this CLI?); nothing was signed');
  try {
    await checkAndSign(target, proposal, asked, signer, out);
  } catch (err) {
    if (err instanceof DockfleetError && err.code === 'forbidden') {
      for (const job of proposal.jobs) {
        await callHub(target, 'POST', `/api/v1/jobs/${job.id}/decline`, { reason: err.message.slice(0, 1_000) }).catch(() => undefined);
      }
    }
    throw err;
  }
}

async function checkAndSign(target: HubTarget, proposal: SigningProposal, asked: Asked, signer: IntentSigner, out: NodeJS.WritableStream): Promise<void> {
  checkRollout(proposal, asked);
  const bodies: Array<{ id: string; node: string; body: string; job: ProposedJob }> = [];
  for (const job of proposal.jobs) {
    const proposed = parseCanonical(job.signedBody);
    if (!proposed) fail(`refusing to sign the ${asked.kind} job for node ${job.node}: its body is not canonical JSON; nothing was signed`);
    bodies.push({ id: job.id, node: job.node, body: job.signedBody, job: proposed! });
  }
  const trusted = asked.kind === 'rollback' ? await rollbackExpectation(asked, bodies, out) : null;
  for (const { node, body, job } of bodies) {
    const expected = asked.kind === 'deploy' ? deployJob(asked, node, job) : asked.kind === 'remove' ? removeJob(asked.stack, node) : trusted!(node, job);
    const field = firstDifference(expected, job, '');
    if (field !== null) fail(refusal(asked.kind, node, field));
    // Signed are the bytes computed here, which equal the hub's (its canonical form was checked).
    if (canonicalJson(expected) !== body) fail(refusal(asked.kind, node, 'job body', 'is not in canonical form'));
  }
  if (asked.kind === 'deploy' && bodies.length > 0) await checkRevisionIsNew(asked.stack, bodies[0]!.job);
  const intents = bodies.map(({ id, node, body }) => ({
    id,
    wire: signer.intent(node, jobOp(asked.kind), `sha256:${createHash('sha256').update(body).digest('hex')}`, MAX_INTENT_LIFETIME_MS).wire,
  }));
  if (asked.kind !== 'remove' && bodies.length > 0) {
    const first = bodies[0]!.job;
    await recordSigned(
      first.target as StackRevision,
      first.secrets as JobSecretsShape,
      bodies.map((b) => b.node),
      signer.publicKey,
    );
  }
  for (const { id, wire } of intents) await callHub(target, 'POST', `/api/v1/jobs/${id}/intent`, { intent: wire });
  out.write(`signed ${intents.length} ${asked.kind} job(s) with operator key ${signer.publicKey}\n`);
}

function checkRollout(proposal: SigningProposal, asked: Asked): void {
  if (proposal.kind !== asked.kind) fail(`refusing to sign: the hub filed a ${proposal.kind}, and this is a ${asked.kind}; nothing was signed`);
  const jobNodes = proposal.jobs.map((j) => j.node);
  if (new Set(jobNodes).size !== jobNodes.length || canonicalJson([...jobNodes].sort()) !== canonicalJson([...proposal.nodes].sort())) {
    fail("refusing to sign: the hub's jobs are not one per node of its rollout; nothing was signed");
  }
  if (asked.kind === 'deploy') {
    if (proposal.parallel !== asked.parallel) fail(`refusing to sign: the hub's rollout runs ${proposal.parallel} node(s) at a time, and ${asked.parallel} was asked; nothing was signed`);
    if (asked.nodes !== null && canonicalJson([...asked.nodes].sort()) !== canonicalJson([...proposal.nodes].sort())) {
      fail(`refusing to sign: the hub's rollout targets ${proposal.nodes.join(', ') || 'no node'}, and ${asked.nodes.join(', ')} was asked; nothing was signed`);
    }
    if (asked.nodes !== null && canonicalJson(proposal.nodes) !== canonicalJson([...new Set(asked.nodes)])) {
      fail("refusing to sign: the hub's rollout has the nodes in another order than asked; nothing was signed");
    }
  }
}

function deployJob(asked: Extract<Asked, { kind: 'deploy' }>, node: string, proposed: ProposedJob): unknown {
  const assigned = hubAssigned(proposed);
  if (!assigned.ok) fail(refusal('deploy', node, assigned.field, 'is not in its form'));
  const { revision, digest } = assigned as { revision: number; digest: string };
  return {
    kind: 'deploy',
    node,
    stack: asked.stack,
    target: { stack: asked.stack, revision, project: asked.project, gate: asked.gate, digest },
    secrets: asked.secrets,
  };
}

/** A revision number this CLI signed before names that project for good: a hub that reuses it for another gets no signature. */
async function checkRevisionIsNew(stack: string, job: ProposedJob): Promise<void> {
  const target = job.target as StackRevision;
  const before = await readSigned(stack, target.revision);
  if (before && (before.digest !== target.digest || canonicalJson(before.project) !== canonicalJson(target.project))) {
    fail(`refusing to sign: the hub names this deploy revision ${target.revision} of ${stack}, which this CLI signed before for another project; nothing was signed`);
  }
}

function removeJob(stack: string, node: string): unknown {
  return { kind: 'remove', node, stack, target: null, secrets: { env: {}, files: {} } };
}

/**
 * A rollback's expected job per node: the revision the hub names must be one this CLI signed, with
 * the same project, gate, digest and secrets, to nodes it signed the stack for. With --trust-hub
 * (and no record) the hub's revision is shown and taken as it is.
 */
async function rollbackExpectation(
  asked: Extract<Asked, { kind: 'rollback' }>,
  bodies: Array<{ node: string; job: ProposedJob }>,
  out: NodeJS.WritableStream,
): Promise<(node: string, job: ProposedJob) => unknown> {
  const first = bodies[0]?.job;
  if (!first) return () => null;
  const assigned = hubAssigned(first);
  if (!assigned.ok) fail(refusal('rollback', bodies[0]!.node, assigned.field, 'is not in its form'));
  const revision = (assigned as { revision: number }).revision;
  if (asked.to !== null && revision !== asked.to) fail(`refusing to sign: the hub's rollback goes to revision ${revision}, and ${asked.to} was asked; nothing was signed`);
  const record = await readSigned(asked.stack, revision);
  if (!record) {
    if (!asked.trustHub) {
      fail(
        `refusing to sign the rollback of ${asked.stack} to revision ${revision}: this CLI never signed that revision, so it cannot tell it is the one you deployed; see it with \`dockfleet stack history ${asked.stack}\` and pass --trust-hub to sign it as the hub has it`,
      );
    }
    const project = (first.target as { project?: StackProject }).project;
    out.write(`--trust-hub: signing revision ${revision} of ${asked.stack} as the hub has it:\n`);
    for (const [name, service] of Object.entries(project?.services ?? {})) out.write(`  ${name}: ${service.image}\n`);
    return (node, job) => ({ ...job, kind: 'rollback', node, stack: asked.stack });
  }
  const nodes = await signedNodes(asked.stack);
  return (node, job) => {
    if (!nodes.has(node) && !asked.trustHub)
      fail(`refusing to sign the rollback job for node ${node}: this CLI never signed ${asked.stack} for that node (pass --trust-hub to sign it anyway); nothing was signed`);
    const secrets = job.secrets as JobSecretsShape;
    if (secrets === null || typeof secrets !== 'object' || secretsDigest(secrets, record.secrets.salt) !== record.secrets.sha256) {
      fail(refusal('rollback', node, 'secrets', `differ from those revision ${revision} was signed with`));
    }
    return {
      kind: 'rollback',
      node,
      stack: asked.stack,
      target: { stack: asked.stack, revision, project: record.project, gate: record.gate, digest: record.digest },
      secrets,
    };
  };
}
