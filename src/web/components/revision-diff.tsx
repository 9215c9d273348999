/** A diff of the Compose files of any two revisions of a stack (older on the left by default). */
import type { JSX } from 'preact';
import { useEffect, useState } from 'preact/hooks';
import { errorMessage, get } from '../lib/api.ts';
import { plural } from '../lib/format.ts';
import { lineDiff } from '../lib/line-diff.ts';
import type { RevisionDetail } from '../lib/types.ts';
import { InlineError, Loading } from './ui.tsx';

const cache = new Map<string, Promise<RevisionDetail>>();

function revision(stack: string, rev: number): Promise<RevisionDetail> {
  const key = `${stack}\n${rev}`;
  let p = cache.get(key);
  if (!p) {
    p = get<RevisionDetail>(`/api/v1/stacks/${encodeURIComponent(stack)}/revisions/${rev}`);
    p.catch(() => cache.delete(key));
    cache.set(key, p);
  }
  return p;
}

function envText(env: Record<string, string>): string {
  return Object.keys(env)
    .sort()
    .map((k) => `${k}=${env[k]}`)
    .join('\n');
}

export function RevisionDiff({ stack, revisions }: { stack: string; revisions: number[] }): JSX.Element {
  const newest = revisions[0]!;
  const [from, setFrom] = useState(revisions[1] ?? newest);
  const [to, setTo] = useState(newest);
  const [pair, setPair] = useState<[RevisionDetail, RevisionDetail] | null>(null);
  const [error, setError] = useState<string | null>(null);
  useEffect(() => {
    let stale = false;
    setError(null);
    Promise.all([revision(stack, from), revision(stack, to)]).then(
      (p) => {
        if (!stale) setPair(p);
      },
      (e: unknown) => {
        if (!stale) setError(errorMessage(e));
      },
    );
    return () => {
      stale = true;
    };
  }, [stack, from, to]);
  const current = pair && pair[0].revision === from && pair[1].revision === to ? pair : null;
  const lines = current ? lineDiff(current[0].compose, current[1].compose) : [];
  const envLines = current ? lineDiff(envText(current[0].env), envText(current[1].env)).filter((l) => l.kind !== 'same') : [];
  const changed = lines.filter((l) => l.kind !== 'same').length;
  return (
    <section class="revision-diff" aria-labelledby="diff-title">
      <h3 id="diff-title" class="sub-title">
        Compare revisions
      </h3>
      <div class="field-row">
        <div class="field">
          <label for="diff-from">From</label>
          <select id="diff-from" value={String(from)} onChange={(e) => setFrom(Number(e.currentTarget.value))}>
            {revisions.map((r) => (
              <option key={r} value={String(r)}>
                Revision {r}
              </option>
            ))}
          </select>
        </div>
        <div class="field">
          <label for="diff-to">To</label>
          <select id="diff-to" value={String(to)} onChange={(e) => setTo(Number(e.currentTarget.value))}>
            {revisions.map((r) => (
              <option key={r} value={String(r)}>
                Revision {r}
              </option>
            ))}
          </select>
        </div>
      </div>
      <InlineError>{error}</InlineError>
      {!current ? (
        !error && <Loading label="Loading the revisions…" />
      ) : (
        <>
          <p class="muted small" role="status">
            {changed === 0 ? 'The Compose files are the same.' : `${plural(lines.filter((l) => l.kind === 'del').length, 'line')} removed, ${lines.filter((l) => l.kind === 'add').length} added`}
            {current[0].digest === current[1].digest ? ' · same intent (equal digests)' : ''}
          </p>
          <div class="diff" role="table" aria-label={`Compose file, revision ${from} to revision ${to}`}>
            {lines.map((l, i) => (
              <div key={i} role="row" class={`diff-line diff-${l.kind}`}>
                <span role="cell" class="diff-no" aria-label={l.oldLine ? `old line ${l.oldLine}` : undefined}>
                  {l.oldLine ?? ''}
                </span>
                <span role="cell" class="diff-no" aria-label={l.newLine ? `new line ${l.newLine}` : undefined}>
                  {l.newLine ?? ''}
                </span>
                <span role="cell" class="diff-mark" aria-label={l.kind === 'add' ? 'added' : l.kind === 'del' ? 'removed' : undefined}>
                  {l.kind === 'add' ? '+' : l.kind === 'del' ? '−' : ' '}
                </span>
                <span role="cell" class="diff-text">
                  {l.text || ' '}
                </span>
              </div>
            ))}
          </div>
          {envLines.length > 0 && (
            <>
              <h4 class="sub-title">Environment</h4>
              <div class="diff">
                {envLines.map((l, i) => (
                  <div key={i} class={`diff-line diff-${l.kind}`}>
                    <span class="diff-mark">{l.kind === 'add' ? '+' : '−'}</span>
                    <span class="diff-text">{l.text}</span>
                  </div>
                ))}
              </div>
            </>
          )}
        </>
      )}
    </section>
  );
}
