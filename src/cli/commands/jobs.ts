/** `dockfleet jobs` and `dockfleet job show`: the job history per node and stack, and one job
 * with its steps, timings and log lines, read from the hub's REST API. */
import { parseArgs } from 'node:util';
import { UsageError, type Command } from '../command.ts';
import { TARGET_HELP, TARGET_OPTIONS, callHub, resolveTarget } from '../hub-client.ts';

interface ApiJob {
  id: string;
  kind: string;
  node: string;
  stack: string;
  state: string;
  createdAt: string;
  finishedAt: string | null;
  revision: number | null;
  error: string | null;
}

interface ApiJobDetail extends ApiJob {
  createdBy: string;
  startedAt: string | null;
  expiresAt: string;
  attempts: number;
  deliveryError: string | null;
  steps: Array<{ name: string; state: string; startedAt: string; finishedAt: string | null }>;
  logs: Array<{ at: string; line: string }>;
  logsDropped: number;
}

function table(rows: string[][]): string {
  const widths = rows[0]!.map((_, i) => Math.max(...rows.map((r) => r[i]!.length)));
  return rows
    .map(
      (r) =>
        `${r
          .map((c, i) => c.padEnd(widths[i]!))
          .join('  ')
          .trimEnd()}\n`,
    )
    .join('');
}

function took(from: string | null, to: string | null): string {
  if (from === null || to === null) return '-';
  const ms = Date.parse(to) - Date.parse(from);
  return ms < 10_000 ? `${ms} ms` : `${(ms / 1000).toFixed(1)} s`;
}

export const jobsCommand: Command = {
  summary: 'list jobs (deploys, rollbacks, removals), newest first',
  usage: `dockfleet jobs [--node N] [--stack NAME] [--limit N] [--json]

  --json   an array of {id, kind, node, stack, state, createdAt, finishedAt}; state is queued|running|succeeded|failed

${TARGET_HELP}`,
  async run(args) {
    const { values, positionals } = parseArgs({
      args,
      strict: true,
      allowPositionals: true,
      options: { ...TARGET_OPTIONS, node: { type: 'string' }, stack: { type: 'string' }, limit: { type: 'string' }, json: { type: 'boolean' } },
    });
    if (positionals.length > 0) throw new UsageError('jobs takes no arguments');
    if (values.limit !== undefined && !/^\d+$/.test(values.limit)) throw new UsageError('--limit must be a number');
    const query = new URLSearchParams();
    if (values.node !== undefined) query.set('node', values.node);
    if (values.stack !== undefined) query.set('stack', values.stack);
    if (values.limit !== undefined) query.set('limit', values.limit);
    const qs = query.size > 0 ? `?${query}` : '';
    const jobs = (await callHub(resolveTarget(values), 'GET', `/api/v1/jobs${qs}`)) as ApiJob[];
    if (values.json) {
      const out = jobs.map((j) => ({ id: j.id, kind: j.kind, node: j.node, stack: j.stack, state: j.state, createdAt: j.createdAt, finishedAt: j.finishedAt }));
      process.stdout.write(`${JSON.stringify(out, null, 2)}\n`);
      return;
    }
    const rows = [['ID', 'KIND', 'NODE', 'STACK', 'REV', 'STATE', 'CREATED', 'TOOK']];
    for (const j of jobs) rows.push([j.id, j.kind, j.node, j.stack, j.revision === null ? '-' : String(j.revision), j.state, j.createdAt, took(j.createdAt, j.finishedAt)]);
    process.stdout.write(table(rows));
  },
};

export const jobShowCommand: Command = {
  summary: 'show one job: its steps, timings and log lines (dockfleet job show ID)',
  usage: `dockfleet job show ID [--json]

${TARGET_HELP}`,
  async run(args) {
    const { values, positionals } = parseArgs({ args, strict: true, allowPositionals: true, options: { ...TARGET_OPTIONS, json: { type: 'boolean' } } });
    if (positionals[0] !== 'show' || positionals.length !== 2) throw new UsageError('expected: job show ID');
    const job = (await callHub(resolveTarget(values), 'GET', `/api/v1/jobs/${encodeURIComponent(positionals[1]!)}`)) as ApiJobDetail;
    if (values.json) {
      process.stdout.write(`${JSON.stringify(job, null, 2)}\n`);
      return;
    }
    const out: string[] = [
      `job       ${job.id}`,
      `kind      ${job.kind} of stack ${job.stack}${job.revision === null ? '' : ` (revision ${job.revision})`} on node ${job.node}`,
      `state     ${job.state}`,
      `by        ${job.createdBy}`,
      `created   ${job.createdAt}`,
      `started   ${job.startedAt ?? '-'}`,
      `finished  ${job.finishedAt ?? '-'}${job.finishedAt ? ` (${took(job.createdAt, job.finishedAt)} after filing)` : ''}`,
      `expires   ${job.expiresAt}`,
      `delivered ${job.attempts}×${job.deliveryError ? ` (last: ${job.deliveryError})` : ''}`,
    ];
    if (job.error) out.push(`error     ${job.error}`);
    process.stdout.write(`${out.join('\n')}\n`);
    if (job.steps.length > 0) {
      process.stdout.write('\n');
      process.stdout.write(table([['STEP', 'STATE', 'STARTED', 'TOOK'], ...job.steps.map((s) => [s.name, s.state, s.startedAt, took(s.startedAt, s.finishedAt)])]));
    }
    if (job.logs.length > 0) {
      process.stdout.write('\n');
      for (const l of job.logs) process.stdout.write(`${l.at}  ${l.line}\n`);
    }
    if (job.logsDropped > 0) process.stdout.write(`(${job.logsDropped} later log lines were not kept)\n`);
  },
};
