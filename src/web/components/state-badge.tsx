/** Badges for stack and job states: a text label always, colour only as a second cue. */
import type { JSX } from 'preact';

const TONE: Record<string, string> = {
  healthy: 'ok',
  succeeded: 'ok',
  deploying: 'info',
  running: 'info',
  queued: 'muted',
  failed: 'bad',
  'awaiting-signature': 'warn',
  'rolled-back': 'warn',
  drifted: 'warn',
  removed: 'muted',
  skipped: 'muted',
};

const HINT: Record<string, string> = {
  healthy: 'the desired revision runs and passed its health gate',
  deploying: 'a job is applying a revision on this node',
  failed: 'the last job failed on this node',
  'rolled-back': 'the last deploy failed its gate and the previous revision was put back',
  drifted: 'a stack container was changed, removed or added by hand on the host',
  'awaiting-signature': 'filed for a host that requires signed intent: sent once its operator signs it',
};

/** States whose name is not a word on its own. */
const WORDS: Record<string, string> = { 'awaiting-signature': 'awaiting signature' };

export function StateBadge({ state, title }: { state: string; title?: string }): JSX.Element {
  const tone = TONE[state] ?? 'muted';
  return (
    <span class={`badge badge-${tone} state-${state}`} title={title ?? HINT[state]}>
      <span class="dot" aria-hidden="true" />
      {WORDS[state] ?? state}
    </span>
  );
}
