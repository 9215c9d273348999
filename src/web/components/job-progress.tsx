/**
 * One job as it runs: state, steps with their timings, log lines and the result. While the job
 * is queued or running it asks the hub again every ~500 ms (the live stream carries no jobs).
 */
import type { JSX } from 'preact';
import { useEffect, useRef, useState } from 'preact/hooks';
import { get, errorMessage } from '../lib/api.ts';
import { dateTime } from '../lib/format.ts';
import { signingFailure } from '../lib/job-signing-words.ts';
import type { JobDetail, JobStep } from '../lib/types.ts';
import { StateBadge } from './state-badge.tsx';
import { ErrorState, Loading, Spinner } from './ui.tsx';

const POLL_MS = 500;

export function useJob(id: string, onFinal?: (job: JobDetail) => void): { job: JobDetail | null; error: string | null } {
  const [job, setJob] = useState<JobDetail | null>(null);
  const [error, setError] = useState<string | null>(null);
  const finalCb = useRef(onFinal);
  finalCb.current = onFinal;
  useEffect(() => {
    let stop = false;
    let timer: ReturnType<typeof setTimeout> | null = null;
    const ac = new AbortController();
    const tick = async (): Promise<void> => {
      try {
        const j = await get<JobDetail>(`/api/v1/jobs/${encodeURIComponent(id)}`, { signal: ac.signal });
        if (stop) return;
        setJob(j);
        setError(null);
        if (j.state === 'succeeded' || j.state === 'failed') {
          finalCb.current?.(j);
          return;
        }
      } catch (err) {
        if (stop) return;
        setError(errorMessage(err));
      }
      timer = setTimeout(() => void tick(), POLL_MS);
    };
    void tick();
    return () => {
      stop = true;
      ac.abort();
      if (timer) clearTimeout(timer);
    };
  }, [id]);
  return { job, error };
}

function ms(from: string | null, to: string | null): string {
  if (!from) return '';
  const a = Date.parse(from);
  const b = to ? Date.parse(to) : Date.now();
  if (!Number.isFinite(a) || !Number.isFinite(b)) return '';
  const d = Math.max(0, b - a);
  return d < 1000 ? `${d} ms` : `${(d / 1000).toFixed(1)} s`;
}

function StepRow({ step }: { step: JobStep }): JSX.Element {
  return (
    <li class={`step step-${step.state}`}>
      <StateBadge state={step.state} />
      <span class="step-name">{step.name}</span>
      <span class="muted small step-time">
        {ms(step.startedAt, step.finishedAt)}
        {step.state === 'running' ? ' so far' : ''}
      </span>
    </li>
  );
}

export function JobProgress({ id, onFinal, heading = 'h2' }: { id: string; onFinal?: (job: JobDetail) => void; heading?: 'h2' | 'h3' }): JSX.Element {
  const { job, error } = useJob(id, onFinal);
  if (!job) return error ? <ErrorState error={error} title="Could not load the job" /> : <Loading label="Loading the job…" />;
  const H = heading;
  const live = job.state === 'awaiting-signature' || job.state === 'queued' || job.state === 'running';
  const unsigned = signingFailure(job);
  return (
    <section class="job-progress" aria-label={`Job ${job.id}`} aria-busy={live ? 'true' : 'false'}>
      <div class="job-head">
        <H class="job-title">
          <a href={`/jobs/${encodeURIComponent(job.id)}`}>
            {job.kind} {job.stack}
          </a>{' '}
          on <a href={`/jobs?node=${encodeURIComponent(job.node)}`}>{job.node}</a>
        </H>
        <span role="status" aria-live="polite" class="job-state">
          <StateBadge state={job.state} />
          {live && <Spinner />}
          {job.rolledBack && job.kind === 'deploy' && (
            <span class="badge badge-warn" title="the deploy failed and the previous revision was put back">
              rolled back
            </span>
          )}
          {unsigned && (
            <span class="badge badge-warn" title={unsigned.hint}>
              {unsigned.label}
            </span>
          )}
        </span>
      </div>
      <dl class="kv small">
        <div>
          <dt>Job</dt>
          <dd class="mono">{job.id}</dd>
        </div>
        <div>
          <dt>Revision</dt>
          <dd>{job.revision ?? '—'}</dd>
        </div>
        <div>
          <dt>Filed</dt>
          <dd>
            {dateTime(job.createdAt)} by {job.createdBy}
          </dd>
        </div>
        <div>
          <dt>Started</dt>
          <dd>{job.startedAt ? dateTime(job.startedAt) : job.state === 'queued' ? 'waiting for the node' : job.state === 'awaiting-signature' ? "waiting for its operator's signature" : '—'}</dd>
        </div>
        <div>
          <dt>Took</dt>
          <dd>
            {ms(job.startedAt ?? job.createdAt, job.finishedAt)}
            {live ? ' so far' : ''}
          </dd>
        </div>
        {job.attempts > 1 && (
          <div>
            <dt>Deliveries</dt>
            <dd>{job.attempts}</dd>
          </div>
        )}
      </dl>
      {job.deliveryError && live && <p class="muted small">Last delivery: {job.deliveryError}</p>}
      {job.error && (
        <div class="job-error" role="alert">
          <strong>{job.errorCode ? `${job.errorCode}: ` : ''}</strong>
          <pre class="wrap">{job.error}</pre>
        </div>
      )}
      <h3 class="sub-title">Steps</h3>
      {job.steps.length === 0 ? (
        <p class="muted small">{live ? 'No step yet.' : 'No steps recorded.'}</p>
      ) : (
        <ol class="steps">
          {job.steps.map((s, i) => (
            <StepRow key={`${i}-${s.name}`} step={s} />
          ))}
        </ol>
      )}
      <h3 class="sub-title">Log</h3>
      {job.logs.length === 0 ? (
        <p class="muted small">No log lines.</p>
      ) : (
        <pre class="job-log" tabIndex={0} aria-label="Job log">
          {job.logsDropped > 0 && `… ${job.logsDropped} earlier lines dropped\n`}
          {job.logs.map((l) => `${l.at ? new Date(l.at).toLocaleTimeString() : ''}  ${l.line}`).join('\n')}
        </pre>
      )}
    </section>
  );
}
