/** A real agent channel (real TLS, real handshake, real HTTP/2) whose handler the test writes:
 * it answers the hub's job deliveries (POST JOBS_PATH) the way the test says, so the hub's job
 * queue can be tested before, and apart from, the agent's own job runner. Inventory and stack
 * status streams are answered and held open, as a real agent does. */
import { mkdtemp } from 'node:fs/promises';
import type { Http2ServerRequest, Http2ServerResponse } from 'node:http2';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { enrollAgent } from '../../src/agent/enroll.ts';
import { runChannel } from '../../src/agent/hub-channel.ts';
import { AgentIdentity } from '../../src/agent/identity.ts';
import { Backoff } from '../../src/lib/backoff.ts';
import { silentLogger } from '../../src/lib/logger.ts';
import { INVENTORY_PATH } from '../../src/protocol/inventory.ts';
import { JOBS_PATH, jobRequest, type JobEvent, type JobRequest } from '../../src/protocol/jobs.ts';
import { STACKS_STATUS_PATH } from '../../src/protocol/stacks.ts';

export type JobAnswer = (job: JobRequest, res: Http2ServerResponse, delivery: number) => void | Promise<void>;

export interface JobAgent {
  node: string;
  stateDir: string;
  connects: number;
  /** Every delivery, in order of arrival, with the time it arrived (performance.now()). */
  deliveries: Array<{ job: JobRequest; at: number }>;
  /** Open stack status streams (the test may write messages to them). */
  statusStreams: Set<Http2ServerResponse>;
  answer: JobAnswer;
  waitConnected(count?: number, timeoutMs?: number): Promise<void>;
  stop(): Promise<void>;
}

/** Starts answering an NDJSON job stream. */
export function beginEvents(res: Http2ServerResponse): void {
  res.writeHead(200, { 'content-type': 'application/x-ndjson' });
}

export function send(res: Http2ServerResponse, event: JobEvent | string): void {
  res.write(`${typeof event === 'string' ? event : JSON.stringify(event)}\n`);
}

/** accepted, one step, one log line, done(succeeded) — what a quick good job looks like. */
export function succeed(job: JobRequest, res: Http2ServerResponse, extraLog?: string): void {
  const at = Date.now();
  beginEvents(res);
  send(res, { t: 'accepted', at });
  send(res, { t: 'step', step: { name: 'apply', state: 'running', startedAt: at, finishedAt: null } });
  send(res, { t: 'log', at, line: extraLog ?? `applying ${job.stack}` });
  send(res, { t: 'step', step: { name: 'apply', state: 'succeeded', startedAt: at, finishedAt: Date.now() } });
  send(res, { t: 'done', result: { state: 'succeeded', error: null, revision: job.target?.revision ?? 0, rolledBack: false, startedAt: at, finishedAt: Date.now() } });
  res.end();
}

export async function startJobAgent(opts: { hubUrl: string; code?: string; stateDir?: string; answer: JobAnswer }): Promise<JobAgent> {
  const stateDir = opts.stateDir ?? (await mkdtemp(join(tmpdir(), 'dockfleet-job-agent-')));
  const hubUrl = new URL(opts.hubUrl);
  const identity = (await AgentIdentity.load(stateDir)) ?? (await enrollAgent({ hubUrl, code: opts.code!, stateDir }));
  const stop = new AbortController();
  const agent: JobAgent = {
    node: identity.node,
    stateDir,
    connects: 0,
    deliveries: [],
    statusStreams: new Set(),
    answer: opts.answer,
    async waitConnected(count = 1, timeoutMs = 15_000) {
      const deadline = Date.now() + timeoutMs;
      while (agent.connects < count) {
        if (Date.now() > deadline) throw new Error(`job agent did not connect ${count}× within ${timeoutMs} ms`);
        await new Promise((r) => setTimeout(r, 10));
      }
    },
    async stop() {
      stop.abort();
      await running.catch(() => {});
    },
  };
  const handler = (req: Http2ServerRequest, res: Http2ServerResponse): void => {
    const path = req.url.split('?')[0];
    res.stream.on('error', () => {});
    if (path === JOBS_PATH && req.method === 'POST') {
      const chunks: Buffer[] = [];
      req.on('data', (c: Buffer) => chunks.push(c));
      req.on('end', () => {
        const job = jobRequest.parse(JSON.parse(Buffer.concat(chunks).toString('utf8')));
        agent.deliveries.push({ job, at: performance.now() });
        const n = agent.deliveries.filter((d) => d.job.id === job.id).length;
        void Promise.resolve(agent.answer(job, res, n)).catch(() => res.stream.close());
      });
      return;
    }
    if ((path === INVENTORY_PATH || path === STACKS_STATUS_PATH) && req.method === 'GET') {
      res.writeHead(200, { 'content-type': 'application/x-ndjson' });
      if (path === STACKS_STATUS_PATH) {
        agent.statusStreams.add(res);
        res.stream.once('close', () => agent.statusStreams.delete(res));
      }
      return;
    }
    res.writeHead(404);
    res.end();
  };
  const running = runChannel(
    {
      hubUrl,
      identity,
      handler,
      log: silentLogger(),
      backoff: new Backoff({ initialMs: 50, maxMs: 500 }),
      onConnected: () => void agent.connects++,
    },
    stop.signal,
  );
  running.catch(() => {});
  return agent;
}

/** A minimal revision of a stack with no services (the hub's queue does not look inside). */
export function emptyRevision(stack: string, revision: number): NonNullable<JobRequest['target']> {
  return {
    stack,
    revision,
    project: { name: stack, services: {}, networks: {}, volumes: {}, configs: {}, secretFiles: [] },
    gate: { stableMs: 0, deadlineMs: 1_000 },
    digest: '0'.repeat(64),
  };
}
