/**
 * `POST JOBS_PATH`: one delivery of one job from the hub. The body is the JobRequest (read
 * bounded, parsed with its schema); the answer is always `200 application/x-ndjson`, a stream
 * of `jobEvent` lines, so the hub reads every outcome one way: `refused` (final, unrun), or
 * `accepted`, then the steps and log lines as they happen, then `done` with the result. A job
 * already finished is answered at once from the ledger; a job running now is joined.
 * The delivery's stream closing (the hub gone) only stops the listening, never the job.
 *
 * On a host that requires signed intent, a job it does not know yet runs only with a valid
 * `intent` over `job <kind>` and the digest of jobSignedBody(job); a redelivery of a job already
 * in the ledger is answered from it without spending the nonce again.
 */
import type { Http2ServerRequest, Http2ServerResponse } from 'node:http2';
import { jobRequest, jobSignedBody, type JobEvent } from '../../protocol/jobs.ts';
import { jobOp } from '../../protocol/intent.ts';
import { bodyMatches } from '../intent/intent-verifier.ts';
import { callHints, intentRefusalText, type IntentGuard } from '../intent/intent-guard.ts';
import type { ErrorCode } from '../../protocol/errors.ts';
import { parseJsonLine } from '../../lib/ndjson.ts';
import { readBounded } from '../../lib/read-bounded.ts';
import type { Logger } from '../../lib/logger.ts';
import type { AgentJobs } from './agent-jobs.ts';
import { auditOriginOf, noteSigner } from '../audit/audit-origin.ts';

/** A job carries its whole normalised project and its secret files (base64). */
export const MAX_JOB_BODY = 4 * 1024 * 1024;

type Handler = (req: Http2ServerRequest, res: Http2ServerResponse) => void;

export function createJobsHandler(jobs: AgentJobs, log: Logger, guard: IntentGuard | null = null): Handler {
  return (req, res) => {
    serveDelivery(jobs, req, res, guard).catch((err: unknown) => {
      log.error({ err }, 'job delivery failed');
      if (!res.headersSent) refuse(res, 'internal', 'the agent could not answer this delivery');
      else res.destroy();
    });
  };
}

async function serveDelivery(jobs: AgentJobs, req: Http2ServerRequest, res: Http2ServerResponse, guard: IntentGuard | null): Promise<void> {
  const raw = await readBounded(req as AsyncIterable<Buffer>, MAX_JOB_BODY);
  if (raw === null) return refuse(res, 'payload_too_large', `a job body may be at most ${MAX_JOB_BODY} bytes`);
  const json = parseJsonLine(raw.toString('utf8'));
  if (!json.ok) return refuse(res, 'validation_failed', 'the job body is not JSON');
  const parsed = jobRequest.safeParse(json.value);
  if (!parsed.success) {
    // Names the field and the rule, never the value (it may be a secret).
    const issue = parsed.error.issues[0];
    return refuse(res, 'validation_failed', `the job body is not a job: ${issue?.path.join('.') || '(top level)'}: ${issue?.code ?? 'invalid'}`);
  }
  const job = parsed.data;
  if (guard?.requires('job', req.method) && !jobs.knows(job.id)) {
    const op = jobOp(job.kind);
    const checked = guard.check(job.intent, { op, bodyMode: 'digest' });
    const reason = !checked.ok ? checked.reason : bodyMatches(checked.claims, Buffer.from(jobSignedBody(job))) ? null : 'the job is not the one that was signed';
    if (reason !== null) {
      guard.refused({ op: `${op} ${job.id}`, target: job.stack || `volume ${job.volume?.volume ?? ''}`, reason, hints: callHints(req), ...(checked.claims ? { claims: checked.claims } : {}) });
      return refuse(res, 'forbidden', intentRefusalText(guard.node, reason).slice(0, 2_000));
    }
    if (checked.ok) noteSigner(req, checked.claims);
  }
  const delivery = jobs.deliver(job, auditOriginOf(req));
  if (delivery.kind === 'refused') return refuse(res, delivery.code, delivery.message);
  if (delivery.kind === 'finished') {
    open(res);
    send(res, { t: 'accepted', at: Date.now() });
    send(res, { t: 'done', result: delivery.result });
    res.end();
    return;
  }
  const notRecorded = await delivery.accepted;
  if (notRecorded) return refuse(res, notRecorded.code, notRecorded.message);
  open(res);
  send(res, { t: 'accepted', at: Date.now() });
  for (const step of delivery.execution.steps()) send(res, { t: 'step', step });
  const stop = delivery.execution.subscribe((event) => {
    send(res, event);
    if (event.t === 'done') res.end();
  });
  res.once('close', stop);
}

function open(res: Http2ServerResponse): void {
  res.writeHead(200, { 'content-type': 'application/x-ndjson' });
}

/** Writes one event; a delivery whose stream is gone is skipped (the job goes on). Lines are
 * few and bounded per job (job-execution.ts), so the stream's own buffer is the queue. */
function send(res: Http2ServerResponse, event: JobEvent): void {
  if (res.closed || res.destroyed || res.writableEnded) return;
  res.write(`${JSON.stringify(event)}\n`);
}

function refuse(res: Http2ServerResponse, code: ErrorCode, message: string): void {
  if (res.closed || res.destroyed) return;
  open(res);
  res.end(`${JSON.stringify({ t: 'refused', code, message } satisfies JobEvent)}\n`);
}
