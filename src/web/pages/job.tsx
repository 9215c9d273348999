/** One job: its steps with timings and its log lines, live while it runs. */
import type { JSX } from 'preact';
import { JobProgress } from '../components/job-progress.tsx';
import { PageHeader, buttonClass } from '../components/ui.tsx';

export function JobPage({ id }: { id: string }): JSX.Element {
  return (
    <>
      <PageHeader title="Job" sub={<span class="mono">{id}</span>}>
        <a class={buttonClass('ghost')} href="/jobs">
          All jobs
        </a>
      </PageHeader>
      <JobProgress id={id} />
    </>
  );
}
