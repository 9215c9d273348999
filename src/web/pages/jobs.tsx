/** Jobs: the history per node and per stack (newest first), each linking to its steps and log. */
import type { JSX } from 'preact';
import { useEffect, useState } from 'preact/hooks';
import { StateBadge } from '../components/state-badge.tsx';
import { Empty, ErrorState, Loading, PageHeader, SubmitButton, buttonClass, useAsync } from '../components/ui.tsx';
import { get, qs } from '../lib/api.ts';
import { signingFailure } from '../lib/job-signing-words.ts';
import { ago, dateTime } from '../lib/format.ts';
import { navigate, useLocation } from '../lib/router.ts';
import type { JobView } from '../lib/types.ts';

const REFRESH_MS = 3000;

export function JobsPage(): JSX.Element {
  const loc = useLocation();
  const params = { node: loc.query.get('node') ?? '', stack: loc.query.get('stack') ?? '', limit: loc.query.get('limit') ?? '100' };
  const [form, setForm] = useState(params);
  useEffect(() => setForm(params), [loc.href]);
  const state = useAsync((signal) => get<JobView[]>(`/api/v1/jobs${qs(params)}`, { signal }), [params.node, params.stack, params.limit]);
  useEffect(() => {
    const t = setInterval(state.reload, REFRESH_MS);
    return () => clearInterval(t);
  }, []);
  const submit = (e: Event): void => {
    e.preventDefault();
    navigate(`/jobs${qs({ node: form.node.trim(), stack: form.stack.trim(), limit: form.limit === '100' ? '' : form.limit })}`, { replace: true });
  };
  const scope = [params.stack && `stack ${params.stack}`, params.node && `node ${params.node}`].filter(Boolean).join(', ');
  return (
    <>
      <PageHeader title="Jobs" sub={scope ? `Deploys, rollbacks and removals of ${scope}` : 'Deploys, rollbacks and removals on every node'} />
      <form class="filters" role="search" aria-label="Filter jobs" onSubmit={submit}>
        <div class="field">
          <label for="j-node">Node</label>
          <input id="j-node" value={form.node} autocomplete="off" onInput={(e) => setForm({ ...form, node: e.currentTarget.value })} />
        </div>
        <div class="field">
          <label for="j-stack">Stack</label>
          <input id="j-stack" value={form.stack} autocomplete="off" onInput={(e) => setForm({ ...form, stack: e.currentTarget.value })} />
        </div>
        <div class="field">
          <label for="j-limit">Limit</label>
          <select id="j-limit" value={form.limit} onChange={(e) => setForm({ ...form, limit: e.currentTarget.value })}>
            {['50', '100', '200', '500', '1000'].map((n) => (
              <option key={n} value={n}>
                {n}
              </option>
            ))}
          </select>
        </div>
        <div class="filters-submit">
          <SubmitButton busy={false}>Apply</SubmitButton>
          <button type="button" class={buttonClass('ghost')} onClick={() => navigate('/jobs', { replace: true })}>
            Reset
          </button>
        </div>
      </form>
      {state.data === undefined ? (
        state.error ? (
          <ErrorState error={state.error} onRetry={state.reload} title="Could not load jobs" />
        ) : (
          <Loading label="Loading jobs…" />
        )
      ) : state.data.length === 0 ? (
        <Empty title="No jobs match">Each deploy, rollback and removal files one job per node; they show here.</Empty>
      ) : (
        <div class="table-wrap">
          <table class="table responsive jobs-table">
            <caption class="sr-only">Jobs, newest first</caption>
            <thead>
              <tr>
                <th scope="col">Job</th>
                <th scope="col">Stack</th>
                <th scope="col">Node</th>
                <th scope="col">Revision</th>
                <th scope="col">State</th>
                <th scope="col">Filed</th>
              </tr>
            </thead>
            <tbody>
              {state.data.map((j) => {
                const unsigned = signingFailure(j);
                return (
                  <tr key={j.id}>
                    <td data-label="Job">
                      <a href={`/jobs/${encodeURIComponent(j.id)}`}>{j.kind}</a>
                      <div class="mono small muted">{j.id}</div>
                    </td>
                    <td data-label="Stack">
                      <a href={`/stacks/${encodeURIComponent(j.stack)}`}>{j.stack}</a>
                    </td>
                    <td data-label="Node">
                      <a href={`/jobs${qs({ node: j.node })}`}>{j.node}</a>
                    </td>
                    <td data-label="Revision">{j.revision ?? '—'}</td>
                    <td data-label="State">
                      <StateBadge state={j.state} />
                      {j.rolledBack && j.kind === 'deploy' && <span class="badge badge-warn">rolled back</span>}
                      {unsigned && (
                        <span class="badge badge-warn" title={unsigned.hint}>
                          {unsigned.label}
                        </span>
                      )}
                      {j.state === 'awaiting-signature' && <div class="small muted">sent to {j.node} once its operator signs it</div>}
                      {j.error && (
                        <div class="small bad-text clamp" title={j.error}>
                          {j.errorCode ? `${j.errorCode}: ` : ''}
                          {j.error}
                        </div>
                      )}
                    </td>
                    <td data-label="Filed" class="nowrap" title={dateTime(j.createdAt)}>
                      {ago(j.createdAt)}
                    </td>
                  </tr>
                );
              })}
            </tbody>
          </table>
          <p class="muted small table-note">
            {state.data.length} jobs{state.data.length >= Number(params.limit) ? ` (the newest ${params.limit})` : ''}.
          </p>
        </div>
      )}
    </>
  );
}
