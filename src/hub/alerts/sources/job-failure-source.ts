/**
 * Jobs failing: a job that ends failed raises a condition per job kind, stack and node (so
 * three failed deploys of one stack on one node are one incident, updated); the next job of
 * the same kind, stack and node that succeeds clears it.
 */
import type { JobQueue } from '../../jobs/job-queue.ts';
import type { JobView } from '../../jobs/job-views.ts';
import type { AlertSource, ConditionSink } from '../alert-source.ts';

const KIND = 'job-failed';

function look(sink: ConditionSink, job: JobView): void {
  const key = `${KIND}:${job.kind}:${job.stack}:${job.node}`;
  if (job.state === 'succeeded') return sink.clear(key);
  if (job.state !== 'failed') return;
  const why = job.error ? `${job.errorCode ? `${job.errorCode}: ` : ''}${job.error}` : 'no reason given';
  sink.raise(KIND, {
    key,
    severity: 'warning',
    node: job.node,
    subject: job.stack,
    title: `${job.kind} of ${job.stack} failed on ${job.node}`,
    detail: `Job ${job.id} failed: ${why.slice(0, 1000)}`,
  });
}

/** Watches the queue's finished jobs. */
export function jobFailureSource(jobs: JobQueue): AlertSource {
  return {
    kind: KIND,
    start(sink) {
      const onFinished = (job: JobView): void => look(sink, job);
      jobs.on('finished', onFinished);
      return () => jobs.off('finished', onFinished);
    },
  };
}
