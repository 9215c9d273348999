/**
 * The job side of a simulated agent (bench/agent-simulator.ts): answers `POST JOBS_PATH` as the
 * real agent does (src/protocol/jobs.ts) without running anything — `accepted` at once, then
 * after `delayMs` one step and `done` with a succeeded result — and keeps a ledger so a job
 * delivered again is answered at once from it. `GET STACKS_STATUS_PATH` gets a stacks message
 * (the stacks this node holds, healthy) now and after every job, and stays open.
 *
 * `onJob` hears each first delivery with the time its request head reached the handler
 * (epoch ms with sub-ms precision: performance.timeOrigin + performance.now(), comparable
 * across processes on one machine).
 */
import type { Http2ServerRequest, Http2ServerResponse } from 'node:http2';
import { performance } from 'node:perf_hooks';
import { jobRequest, JOBS_PATH, type JobEvent, type JobResult } from '../../src/protocol/jobs.ts';
import { STACKS_STATUS_PATH, type StacksStatusMessage } from '../../src/protocol/stacks.ts';

export interface SimulatedJobsOptions {
  /** Milliseconds between `accepted` and `done` (read at each job, so it can change). */
  delayMs: () => number;
  onJob?: (seen: { node: string; id: string; stack: string; kind: string; seenAt: number }) => void;
}

export type JobHandler = (req: Http2ServerRequest, res: Http2ServerResponse) => boolean;

export const preciseNow = (): number => performance.timeOrigin + performance.now();

const MAX_BODY = 16 * 1024 * 1024;

/** One node's job endpoint and stack status stream; returns false for paths it does not serve. */
export function simulatedJobHandler(node: string, opts: SimulatedJobsOptions): JobHandler {
  const ledger = new Map<string, JobResult>();
  const running = new Map<string, Array<(r: JobResult) => void>>();
  const stacks = new Map<string, StacksStatusMessage['stacks'][number]>();
  const watchers = new Set<Http2ServerResponse>();
  const status = (): string => `${JSON.stringify({ t: 'stacks', stacks: [...stacks.values()] } satisfies StacksStatusMessage)}\n`;

  const answer = (res: Http2ServerResponse, events: JobEvent[]): void => {
    if (res.closed || res.destroyed) return;
    res.write(events.map((e) => `${JSON.stringify(e)}\n`).join(''));
  };

  const run = (body: Buffer, seenAt: number, out: Http2ServerResponse): void => {
    let parsed;
    try {
      parsed = jobRequest.safeParse(JSON.parse(body.toString('utf8')));
    } catch {
      parsed = null;
    }
    out.writeHead(200, { 'content-type': 'application/x-ndjson' });
    if (!parsed?.success) {
      answer(out, [{ t: 'refused', code: 'validation_failed', message: 'malformed job' }]);
      out.end();
      return;
    }
    const job = parsed.data;
    const done = ledger.get(job.id);
    if (done) {
      answer(out, [
        { t: 'accepted', at: Date.now() },
        { t: 'done', result: done },
      ]);
      out.end();
      return;
    }
    answer(out, [{ t: 'accepted', at: Date.now() }]);
    const joined = running.get(job.id);
    const finish = (result: JobResult): void => {
      answer(out, [{ t: 'done', result }]);
      out.end();
    };
    if (joined) {
      joined.push(finish);
      return;
    }
    running.set(job.id, [finish]);
    opts.onJob?.({ node, id: job.id, stack: job.stack, kind: job.kind, seenAt });
    const startedAt = Date.now();
    setTimeout(() => {
      const finishedAt = Date.now();
      const revision = job.kind === 'remove' ? 0 : (job.target?.revision ?? 0);
      const result: JobResult = { state: 'succeeded', error: null, revision, rolledBack: false, startedAt, finishedAt };
      ledger.set(job.id, result);
      if (job.kind === 'remove') stacks.delete(job.stack);
      else stacks.set(job.stack, { stack: job.stack, revision, state: 'healthy', drift: [], at: finishedAt });
      answer(out, [{ t: 'step', step: { name: `simulated ${job.kind}`, state: 'succeeded', startedAt, finishedAt } }]);
      for (const f of running.get(job.id) ?? []) f(result);
      running.delete(job.id);
      for (const w of watchers) if (!w.closed && !w.destroyed) w.write(status());
    }, opts.delayMs());
  };

  return (req, res) => {
    const path = req.url.split('?')[0];
    if (path === JOBS_PATH && req.method === 'POST') {
      const seenAt = preciseNow();
      const chunks: Buffer[] = [];
      let size = 0;
      req.on('data', (c: Buffer) => {
        size += c.length;
        if (size <= MAX_BODY) chunks.push(c);
      });
      req.on('end', () => run(Buffer.concat(chunks), seenAt, res));
      req.on('error', () => {});
      return true;
    }
    if (path === STACKS_STATUS_PATH && req.method === 'GET') {
      res.writeHead(200, { 'content-type': 'application/x-ndjson' });
      res.write(status());
      watchers.add(res);
      res.once('close', () => watchers.delete(res));
      return true;
    }
    return false;
  };
}
