/** Who did what, where, when (admins: everything; others: the nodes they may act on): each row a
 * sentence, the raw call one click away. Filtered to one node, rows the host's own log lacks are
 * marked and the host's entries the hub has no row for are listed below. */
import type { JSX } from 'preact';
import { useState } from 'preact/hooks';
import { Empty, ErrorState, Loading, PageHeader, SubmitButton, buttonClass, useAsync } from '../components/ui.tsx';
import { ApiError, get, qs } from '../lib/api.ts';
import { dateTime } from '../lib/format.ts';
import { navigate, useLocation } from '../lib/router.ts';
import type { AuditRow } from '../lib/types.ts';
import { auditWords } from '../lib/audit-words.ts';
import { agreementWords, fetchAgreement, type AuditAgreement } from '../lib/audit-agreement.ts';

/** datetime-local value (local time) → epoch ms, or '' */
function toEpoch(v: string): string {
  if (!v) return '';
  const t = new Date(v).getTime();
  return Number.isFinite(t) ? String(t) : '';
}

function toLocalInput(ms: string | null): string {
  if (!ms) return '';
  const n = Number(ms);
  const d = Number.isFinite(n) ? new Date(n) : new Date(ms);
  if (Number.isNaN(d.getTime())) return '';
  const p = (x: number): string => String(x).padStart(2, '0');
  return `${d.getFullYear()}-${p(d.getMonth() + 1)}-${p(d.getDate())}T${p(d.getHours())}:${p(d.getMinutes())}`;
}

function statusTone(s: number): string {
  return s >= 500 ? 'bad' : s >= 400 ? 'warn' : 'ok';
}

/** Links inside a sentence are underlined, not told apart by colour alone (WCAG 1.4.1). */
const INLINE_LINK = { textDecoration: 'underline' };

/** "mara opened a terminal in web on shop-01", its node and container linked. */
function Sentence({ row }: { row: AuditRow }): JSX.Element {
  const words = auditWords(row);
  return (
    <>
      {words.parts.map((p, i) =>
        typeof p === 'string' ? (
          p
        ) : (
          <a key={i} href={p.href} style={INLINE_LINK}>
            {p.text}
          </a>
        ),
      )}
    </>
  );
}

/** The status once a call has ended; until then what is known: running, or interrupted. */
function Outcome({ row }: { row: AuditRow }): JSX.Element {
  if (row.status !== null) return <span class={`badge badge-${statusTone(row.status)}`}>{row.status}</span>;
  return row.outcome === 'interrupted' ? (
    <span class="badge badge-warn" title="the hub stopped before this call ended; it may have done part of its work">
      interrupted
    </span>
  ) : (
    <span class="badge">running</span>
  );
}

export function AuditPage(): JSX.Element {
  const loc = useLocation();
  const q = loc.query;
  const params = { user: q.get('user') ?? '', node: q.get('node') ?? '', since: q.get('since') ?? '', until: q.get('until') ?? '', limit: q.get('limit') ?? '200' };
  const [form, setForm] = useState({ ...params, since: toLocalInput(params.since), until: toLocalInput(params.until) });
  const state = useAsync((signal) => get<AuditRow[]>(`/api/v1/audit${qs(params)}`, { signal }), [params.user, params.node, params.since, params.until, params.limit]);
  // Filtered to one node: how its host's own log compares (null when it cannot be asked).
  const agreement =
    useAsync((signal): Promise<AuditAgreement | null> => (params.node ? fetchAgreement(params.node, signal).catch(() => null) : Promise.resolve(null)), [params.node, state.data]).data ?? null;
  const hubOnly = new Set(agreement?.hubOnly.map((r) => r.id) ?? []);

  const submit = (e: Event): void => {
    e.preventDefault();
    navigate(`/audit${qs({ user: form.user.trim(), node: form.node.trim(), since: toEpoch(form.since), until: toEpoch(form.until), limit: form.limit === '200' ? '' : form.limit })}`, {
      replace: true,
    });
    state.reload();
  };
  const forbidden = state.error instanceof ApiError && state.error.status === 403;

  return (
    <>
      <PageHeader title="Audit log" sub="Every change made through the hub: REST calls and Docker API calls." />
      {forbidden ? (
        <div class="state state-error" role="alert">
          <p class="state-title">Only admins can read the audit log</p>
          <p class="state-body">Your account is not an administrator. Ask an admin if you need to know who changed what.</p>
        </div>
      ) : (
        <>
          <form class="filters" role="search" aria-label="Filter audit log" onSubmit={submit}>
            <div class="field">
              <label for="a-user">User</label>
              <input id="a-user" value={form.user} autocomplete="off" onInput={(e) => setForm({ ...form, user: e.currentTarget.value })} />
            </div>
            <div class="field">
              <label for="a-node">Node</label>
              <input id="a-node" value={form.node} autocomplete="off" onInput={(e) => setForm({ ...form, node: e.currentTarget.value })} />
            </div>
            <div class="field">
              <label for="a-since">Since</label>
              <input id="a-since" type="datetime-local" value={form.since} onInput={(e) => setForm({ ...form, since: e.currentTarget.value })} />
            </div>
            <div class="field">
              <label for="a-until">Until</label>
              <input id="a-until" type="datetime-local" value={form.until} onInput={(e) => setForm({ ...form, until: e.currentTarget.value })} />
            </div>
            <div class="field">
              <label for="a-limit">Limit</label>
              <select id="a-limit" value={form.limit} onChange={(e) => setForm({ ...form, limit: e.currentTarget.value })}>
                {['50', '100', '200', '500', '1000'].map((n) => (
                  <option key={n} value={n}>
                    {n}
                  </option>
                ))}
              </select>
            </div>
            <div class="filters-submit">
              <SubmitButton busy={state.loading && state.data !== undefined}>Apply</SubmitButton>
              <button
                type="button"
                class={buttonClass('ghost')}
                onClick={() => {
                  setForm({ user: '', node: '', since: '', until: '', limit: '200' });
                  navigate('/audit', { replace: true });
                }}
              >
                Reset
              </button>
            </div>
          </form>
          {agreement && (
            <p class={`table-note${agreement.state === 'differ' ? ' bad-text' : ' muted'}`} role="status">
              Compared with {params.node}'s own log: {agreementWords(agreement)}
              {agreement.state !== 'unknown' ? ` (through host entry ${agreement.checkedThrough})` : ''}.{agreement.hostChainProblem && ` ${agreement.hostChainProblem}.`}
            </p>
          )}
          {state.data === undefined ? (
            state.error ? (
              <ErrorState error={state.error} onRetry={state.reload} title="Could not load the audit log" />
            ) : (
              <Loading label="Loading the audit log…" />
            )
          ) : state.data.length === 0 ? (
            <Empty title="No entries match">Changes appear here as people and tools make them.</Empty>
          ) : (
            <div class="table-wrap">
              <table class="table responsive audit-table">
                <caption class="sr-only">Audit entries, newest first</caption>
                <thead>
                  <tr>
                    <th scope="col">Time</th>
                    <th scope="col">What happened</th>
                    <th scope="col">Status</th>
                  </tr>
                </thead>
                <tbody>
                  {state.data.map((r) => (
                    <tr key={String(r.id)}>
                      <td data-label="Time" class="nowrap">
                        {dateTime(r.time)}
                      </td>
                      <td data-label="What happened" class="audit-words break">
                        <Sentence row={r} />
                        <details class="audit-raw">
                          <summary class="small muted">Raw call</summary>
                          <code class="mono small break">
                            <strong>{r.method}</strong> {r.path} → {r.status ?? r.outcome}
                          </code>
                        </details>
                      </td>
                      <td data-label="Status">
                        <Outcome row={r} />
                        {hubOnly.has(Number(r.id)) && (
                          <>
                            {' '}
                            <span class="badge badge-bad" title="the hub recorded this call on the host, but the host's own log has no entry for it">
                              not in the host's log
                            </span>
                          </>
                        )}
                      </td>
                    </tr>
                  ))}
                </tbody>
              </table>
              <p class="muted small table-note">
                {state.data.length} entries{state.data.length >= Number(params.limit) ? ` (the newest ${params.limit}; narrow the filters or raise the limit for more)` : ''}.
              </p>
            </div>
          )}
          {agreement && agreement.hostOnly.length > 0 && <HostOnly node={params.node} agreement={agreement} />}
        </>
      )}
    </>
  );
}

/** Entries in the host's own log that no hub row accounts for. */
function HostOnly({ node, agreement }: { node: string; agreement: AuditAgreement }): JSX.Element {
  return (
    <section class="table-wrap" aria-labelledby="host-only-title">
      <h2 id="host-only-title" class="section-title">
        In {node}'s own log only
      </h2>
      <p class="muted small">
        {agreement.hostOnlyCount} {agreement.hostOnlyCount === 1 ? 'entry' : 'entries'} of the host's log name no row of the hub's (deleted at the hub, or never recorded there).
      </p>
      <table class="table responsive audit-table">
        <caption class="sr-only">Host log entries the hub has no row for</caption>
        <thead>
          <tr>
            <th scope="col">Time</th>
            <th scope="col">Host entry</th>
            <th scope="col">Result</th>
          </tr>
        </thead>
        <tbody>
          {agreement.hostOnly.map((e) => (
            <tr key={String(e.seq)}>
              <td data-label="Time" class="nowrap">
                {dateTime(e.time)}
              </td>
              <td data-label="Host entry" class="break">
                <code class="mono small break">{e.op}</code> by {e.user ?? 'someone the hub did not name'}
                <span class="muted small">
                  {' '}
                  · entry {e.seq}
                  {e.ref ? ` · hub row ${e.ref}` : ' · no hub row named'}
                </span>
              </td>
              <td data-label="Result">
                <span class={`badge badge-${e.result === 'ok' ? 'ok' : e.result === 'refused' ? 'warn' : 'bad'}`}>
                  {e.result}
                  {e.status !== undefined ? ` ${e.status}` : ''}
                </span>{' '}
                <span class="badge badge-bad">not in the hub's log</span>
              </td>
            </tr>
          ))}
        </tbody>
      </table>
    </section>
  );
}
