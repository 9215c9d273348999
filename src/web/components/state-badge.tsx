/** Badges for stack and job states: a text label always, colour only as a second cue. */
import type { JSX } from 'preact';

const TONE: Record<string, string> = {
  healthy: 'ok', succeeded: 'ok',
  deploying: 'info', running: 'info', queued: 'muted',
  failed: 'bad', 'rolled-back': 'warn', drifted: 'warn', removed: 'muted', skipped: 'muted',
};

const HINT: Record<string, string> = {
  healthy: 'the desired revision runs and passed its health gate',
  deploying: 'a job is applying a revision on this node',
  failed: 'the last job failed on this node',
  'rolled-back': 'the last deploy failed its gate and the previous revision was put back',
  drifted: 'a stack container was changed, removed or added by hand on the host',
};

export function StateBadge({ state, title }: { state: string; title?: string }): JSX.Element {
  const tone = TONE[state] ?? 'muted';
  return (
    <span class={`badge badge-${tone} state-${state}`} title={title ?? HINT[state]}>
      <span class="dot" aria-hidden="true" />
      {state}
    </span>
  );
}
