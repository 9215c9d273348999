/**
 * Alerts: open incidents first, then recently resolved ones, each with its deliveries per
 * receiver; refreshed every few seconds (the hub has no live feed for alerts). Admins also
 * manage the webhook receivers here: add, enable or disable, delete and test-send. Stored
 * targets are never shown back: the hub answers with scheme and host and header names only.
 */
import type { JSX } from 'preact';
import { useEffect, useId, useState } from 'preact/hooks';
import { confirmAction } from '../components/dialog.tsx';
import { toast } from '../components/toasts.tsx';
import { ActionButton, AsyncView, Empty, InlineError, PageHeader, SubmitButton, buttonClass, useAsync, useTicker } from '../components/ui.tsx';
import { del, errorMessage, get, json, post, qs } from '../lib/api.ts';
import { ago, dateTime, plural } from '../lib/format.ts';
import type { AlertDelivery, AlertIncident, AlertReceiver, AlertReceiverFormat, AlertTestOutcome, Me } from '../lib/types.ts';

const REFRESH_MS = 3000;
const RESOLVED_SHOWN = 50;
const enc = encodeURIComponent;
/** Links inside a line of grey text must not rely on colour alone (axe link-in-text-block). */
const UNDERLINED = { textDecoration: 'underline' };
const SPACED = { marginBottom: '16px' };

const KIND_WORDS: Record<string, string> = {
  'node-offline': 'Node offline',
  container: 'Container',
  'stack-drift': 'Stack drift',
  'job-failed': 'Job failed',
};

export function AlertsPage({ me }: { me: Me }): JSX.Element {
  const incidents = useAsync((signal) => get<AlertIncident[]>(`/api/v1/alerts${qs({ limit: 200 })}`, { signal }), []);
  useEffect(() => {
    const t = setInterval(incidents.reload, REFRESH_MS);
    return () => clearInterval(t);
  }, []);
  useTicker(30_000);
  return (
    <>
      <PageHeader title="Alerts" sub="Nodes offline, unhealthy or looping containers, drifting stacks and failed jobs; sent to the receivers an admin sets up" />
      <AsyncView state={incidents} loadingLabel="Loading alerts…" errorTitle="Could not load alerts">
        {(list) => {
          const open = list.filter((i) => i.state === 'open');
          const resolved = list.filter((i) => i.state === 'resolved').slice(0, RESOLVED_SHOWN);
          return (
            <>
              <section class="card" style={SPACED} aria-labelledby="al-open">
                <h2 id="al-open" class="card-title">
                  Open incidents ({open.length})
                </h2>
                {open.length === 0 ? <Empty title="Nothing is wrong right now" /> : <IncidentList list={open} />}
              </section>
              <section class="card" style={SPACED} aria-labelledby="al-resolved">
                <h2 id="al-resolved" class="card-title">
                  Recently resolved
                </h2>
                {resolved.length === 0 ? <p class="muted small">No incident has been resolved yet.</p> : <IncidentList list={resolved} />}
              </section>
            </>
          );
        }}
      </AsyncView>
      {me.role === 'admin' && <ReceiversCard />}
    </>
  );
}

function IncidentList({ list }: { list: AlertIncident[] }): JSX.Element {
  return (
    <ul class="alert-list" style={{ listStyle: 'none', padding: 0, margin: 0 }}>
      {list.map((i) => (
        <IncidentItem key={i.id} i={i} />
      ))}
    </ul>
  );
}

/** Where an incident's node and subject live in the UI, when they have a page. */
function subjectLink(i: AlertIncident): string | null {
  if (i.kind === 'container' && i.node) return `/containers/${enc(i.node)}/${enc(i.subject)}`;
  if (i.kind === 'stack-drift') return `/stacks/${enc(i.subject)}`;
  if (i.kind === 'job-failed') {
    const job = /^Job (\S+) failed/.exec(i.detail)?.[1];
    return job ? `/jobs/${enc(job)}` : `/stacks/${enc(i.subject)}`;
  }
  return null;
}

function IncidentItem({ i }: { i: AlertIncident }): JSX.Element {
  const link = subjectLink(i);
  const badge = i.state === 'resolved' ? 'badge-ok' : i.severity === 'critical' ? 'badge-bad' : 'badge-warn';
  return (
    <li class="alert-item" data-kind={i.kind} style={{ borderTop: '1px solid var(--border)', padding: '12px 0', overflowWrap: 'anywhere' }}>
      <div>
        <span class={`badge ${badge}`}>{i.state === 'resolved' ? 'resolved' : i.severity}</span> <span class="muted small">{KIND_WORDS[i.kind] ?? i.kind}</span>
      </div>
      <h3 class="strong" style={{ fontSize: '14px', margin: '6px 0 2px' }}>
        {i.title}
      </h3>
      <p class="small" style={{ margin: '0 0 6px' }}>
        {i.detail}
      </p>
      <p class="small muted" style={{ margin: 0 }}>
        {i.node && (
          <>
            Node{' '}
            <a style={UNDERLINED} href={`/containers${qs({ node: i.node })}`}>
              {i.node}
            </a>{' '}
            ·{' '}
          </>
        )}
        {link ? (
          <>
            Subject{' '}
            <a style={UNDERLINED} href={link}>
              {i.kind === 'job-failed' ? `job for ${i.subject}` : i.subject}
            </a>{' '}
            ·{' '}
          </>
        ) : i.kind !== 'node-offline' ? (
          <>Subject {i.subject} · </>
        ) : null}
        Opened{' '}
        <time dateTime={i.openedAt} title={dateTime(i.openedAt)}>
          {ago(i.openedAt)}
        </time>
        {' · '}
        {i.resolvedAt ? (
          <>
            Resolved{' '}
            <time dateTime={i.resolvedAt} title={dateTime(i.resolvedAt)}>
              {ago(i.resolvedAt)}
            </time>
          </>
        ) : (
          <>
            Updated{' '}
            <time dateTime={i.updatedAt} title={dateTime(i.updatedAt)}>
              {ago(i.updatedAt)}
            </time>
          </>
        )}
      </p>
      <Deliveries list={i.deliveries} />
    </li>
  );
}

function Deliveries({ list }: { list: AlertDelivery[] }): JSX.Element {
  if (list.length === 0)
    return (
      <p class="small muted" style={{ margin: '6px 0 0' }}>
        Not sent: no receiver was enabled.
      </p>
    );
  return (
    <ul class="small deliveries" aria-label="Deliveries" style={{ margin: '6px 0 0', paddingLeft: '18px' }}>
      {list.map((d) => (
        <li key={`${d.receiverId}:${d.event}`} data-state={d.state}>
          <span class="strong">{d.receiver}</span> ({d.event}): <DeliveryState d={d} />
        </li>
      ))}
    </ul>
  );
}

type DeliveryShown = Pick<AlertDelivery, 'state' | 'attempts' | 'lastStatus' | 'lastError'> & { nextAttemptAt?: string | null };

function DeliveryState({ d }: { d: DeliveryShown }): JSX.Element {
  const cls = d.state === 'sent' ? 'badge-ok' : d.state === 'failed' ? 'badge-bad' : 'badge-warn';
  const answer = d.lastStatus !== null ? `HTTP ${d.lastStatus}` : d.lastError;
  return (
    <>
      <span class={`badge ${cls}`}>{d.state}</span> {plural(d.attempts, 'attempt')}
      {answer && d.state !== 'sent' ? <>, last: {answer}</> : d.lastStatus !== null ? <>, HTTP {d.lastStatus}</> : null}
      {d.state === 'pending' && d.nextAttemptAt && (
        <>
          , next{' '}
          <time dateTime={d.nextAttemptAt} title={dateTime(d.nextAttemptAt)}>
            {ago(d.nextAttemptAt)}
          </time>
        </>
      )}
    </>
  );
}

// ---------------------------------------------------------------------------------------------
// Receivers (admin)

type TestOutcome = { ok: boolean; status: number | null; error: string | null };
/** What the receiver answered a test: "HTTP 200", "HTTP 500 — …", "connection refused". */
const answerWords = (o: TestOutcome): string => `${o.status !== null ? `HTTP ${o.status}` : (o.error ?? 'no answer')}${!o.ok && o.error && o.status !== null ? ` — ${o.error}` : ''}`;
/** A test send's outcome in words: "Test delivered (HTTP 200)" or "Test failed: HTTP 500 — …". */
const testWords = (o: TestOutcome): string => (o.ok ? `Test delivered (${answerWords(o)})` : `Test failed: ${answerWords(o)}`);

function ReceiversCard(): JSX.Element {
  const receivers = useAsync((signal) => get<AlertReceiver[]>('/api/v1/alert-receivers', { signal }), []);
  const [tested, setTested] = useState<Record<string, string>>({});
  useEffect(() => {
    const t = setInterval(receivers.reload, REFRESH_MS * 2);
    return () => clearInterval(t);
  }, []);

  const toggle = async (r: AlertReceiver): Promise<void> => {
    await json('PATCH', `/api/v1/alert-receivers/${enc(r.id)}`, { body: { enabled: !r.enabled } });
    toast.success(`${r.name} ${r.enabled ? 'disabled' : 'enabled'}`);
    receivers.reload();
  };
  const remove = async (r: AlertReceiver): Promise<void> => {
    await del(`/api/v1/alert-receivers/${enc(r.id)}`);
    toast.success(`Receiver ${r.name} deleted`);
    receivers.reload();
  };
  const test = async (r: AlertReceiver): Promise<void> => {
    setTested((t) => ({ ...t, [r.id]: 'Sending…' }));
    try {
      const o = await post<AlertTestOutcome>(`/api/v1/alert-receivers/${enc(r.id)}/test`);
      setTested((t) => ({ ...t, [r.id]: testWords(o) }));
      receivers.reload(); // the hub keeps the outcome as the receiver's latest test
    } catch (err) {
      setTested((t) => ({ ...t, [r.id]: `Test failed: ${errorMessage(err)}` }));
    }
  };

  return (
    <section class="card" aria-labelledby="al-rcv">
      <h2 id="al-rcv" class="card-title">
        Receivers
      </h2>
      <p class="muted small">
        Each incident is POSTed once when it opens and once when it resolves, retried with backoff until the receiver answers 2xx. Stored URLs and header values are sealed and never shown again.
      </p>
      <AsyncView state={receivers} loadingLabel="Loading receivers…" errorTitle="Could not load receivers">
        {(list) =>
          list.length === 0 ? (
            <Empty title="No receivers yet">Alerts show on this page; add a receiver to have them sent too.</Empty>
          ) : (
            <div class="table-wrap">
              <table class="table responsive">
                <caption class="sr-only">Alert receivers</caption>
                <thead>
                  <tr>
                    <th scope="col">Name</th>
                    <th scope="col">Format</th>
                    <th scope="col">Target</th>
                    <th scope="col">Enabled</th>
                    <th scope="col">Latest delivery</th>
                    <th scope="col">
                      <span class="sr-only">Actions</span>
                    </th>
                  </tr>
                </thead>
                <tbody>
                  {list.map((r) => (
                    <tr key={r.id} data-receiver={r.name}>
                      <td data-label="Name" class="strong">
                        {r.name}
                      </td>
                      <td data-label="Format">{r.format}</td>
                      <td data-label="Target" class="mono small" style={{ overflowWrap: 'anywhere' }}>
                        {r.target}
                        {r.headerNames.length > 0 && <div class="muted">headers: {r.headerNames.join(', ')}</div>}
                      </td>
                      <td data-label="Enabled">{r.enabled ? <span class="badge badge-ok">enabled</span> : <span class="badge badge-muted">disabled</span>}</td>
                      <td data-label="Latest delivery" class="small">
                        {r.lastDelivery ? (
                          <>
                            <DeliveryState d={r.lastDelivery} />
                            {r.lastDelivery.at && <> · {ago(r.lastDelivery.at)}</>}
                          </>
                        ) : (
                          <span class="muted">none yet</span>
                        )}
                        {r.lastTest && (
                          <div class="last-test">
                            Last test: <span class={`badge ${r.lastTest.ok ? 'badge-ok' : 'badge-bad'}`}>{r.lastTest.ok ? 'delivered' : 'failed'}</span> {answerWords(r.lastTest)} ·{' '}
                            <time dateTime={r.lastTest.at} title={dateTime(r.lastTest.at)}>
                              {ago(r.lastTest.at)}
                            </time>
                          </div>
                        )}
                        {tested[r.id] && (
                          <div role="status" class="test-result">
                            {tested[r.id]}
                          </div>
                        )}
                      </td>
                      <td class="cell-actions">
                        <div class="row-actions">
                          <ActionButton small what={`Test ${r.name}`} aria-label={`Send a test to ${r.name}`} onClick={() => test(r)}>
                            Test
                          </ActionButton>
                          <ActionButton small what={`Change ${r.name}`} aria-label={`${r.enabled ? 'Disable' : 'Enable'} ${r.name}`} onClick={() => toggle(r)}>
                            {r.enabled ? 'Disable' : 'Enable'}
                          </ActionButton>
                          <ActionButton
                            small
                            variant="danger"
                            what={`Delete ${r.name}`}
                            aria-label={`Delete ${r.name}`}
                            confirm={() =>
                              confirmAction({ title: `Delete receiver ${r.name}?`, body: <p>Alerts stop going to it; its stored URL and headers are gone.</p>, confirmLabel: 'Delete', danger: true })
                            }
                            onClick={() => remove(r)}
                          >
                            Delete
                          </ActionButton>
                        </div>
                      </td>
                    </tr>
                  ))}
                </tbody>
              </table>
            </div>
          )
        }
      </AsyncView>
      <AddReceiverForm onAdded={receivers.reload} />
    </section>
  );
}

interface HeaderRow {
  key: number;
  name: string;
  value: string;
}

function AddReceiverForm({ onAdded }: { onAdded: () => void }): JSX.Element {
  const id = useId();
  const [name, setName] = useState('');
  const [format, setFormat] = useState<AlertReceiverFormat>('json');
  const [url, setUrl] = useState('');
  const [rows, setRows] = useState<HeaderRow[]>([]);
  const [nextKey, setNextKey] = useState(1);
  const [busy, setBusy] = useState(false);
  const [error, setError] = useState<string | null>(null);

  const setRow = (key: number, patch: Partial<HeaderRow>): void => setRows((rs) => rs.map((r) => (r.key === key ? { ...r, ...patch } : r)));
  const submit = async (e: Event): Promise<void> => {
    e.preventDefault();
    setError(null);
    const headers: Record<string, string> = {};
    for (const r of rows) {
      if (!r.name.trim() && !r.value) continue;
      if (!r.name.trim()) return setError('Each header needs a name.');
      headers[r.name.trim()] = r.value;
    }
    setBusy(true);
    try {
      const created = await post<AlertReceiver>('/api/v1/alert-receivers', { name: name.trim(), format, url: url.trim(), ...(rows.length ? { headers } : {}) });
      // Nothing typed stays on screen: the hub keeps it sealed and shows only scheme and host.
      setName('');
      setUrl('');
      setRows([]);
      toast.success(`Receiver ${created.name} added`);
      onAdded();
    } catch (err) {
      setError(errorMessage(err));
    } finally {
      setBusy(false);
    }
  };

  return (
    <form aria-labelledby={`${id}-h`} onSubmit={(e) => void submit(e)} style={{ marginTop: '18px' }}>
      <h3 id={`${id}-h`} class="card-title">
        Add a receiver
      </h3>
      <div class="field-row">
        <div class="field">
          <label for={`${id}-name`}>Receiver name</label>
          <input id={`${id}-name`} required maxLength={100} autocomplete="off" value={name} onInput={(e) => setName(e.currentTarget.value)} />
        </div>
        <div class="field">
          <label for={`${id}-format`}>Format</label>
          <select id={`${id}-format`} value={format} onChange={(e) => setFormat(e.currentTarget.value as AlertReceiverFormat)}>
            <option value="json">Generic JSON POST</option>
            <option value="ntfy">ntfy</option>
            <option value="slack">Slack-compatible</option>
          </select>
        </div>
      </div>
      <div class="field">
        <label for={`${id}-url`}>Webhook URL</label>
        <input id={`${id}-url`} type="url" required autocomplete="off" spellcheck={false} placeholder="https://ntfy.example.com/ops" value={url} onInput={(e) => setUrl(e.currentTarget.value)} />
      </div>
      <fieldset style={{ border: 0, padding: 0, margin: '0 0 14px', minWidth: 0 }}>
        <legend class="small strong">Headers (optional, e.g. Authorization)</legend>
        {rows.map((r, n) => (
          <div class="field-row" key={r.key}>
            <div class="field">
              <label for={`${id}-hn${r.key}`}>Header {n + 1} name</label>
              <input id={`${id}-hn${r.key}`} autocomplete="off" spellcheck={false} value={r.name} onInput={(e) => setRow(r.key, { name: e.currentTarget.value })} />
            </div>
            <div class="field">
              <label for={`${id}-hv${r.key}`}>Header {n + 1} value</label>
              <input id={`${id}-hv${r.key}`} type="password" autocomplete="off" value={r.value} onInput={(e) => setRow(r.key, { value: e.currentTarget.value })} />
            </div>
            <div class="field" style={{ flex: '0 0 auto', justifyContent: 'flex-end' }}>
              <button type="button" class={buttonClass('ghost', true)} aria-label={`Remove header ${n + 1}`} onClick={() => setRows((rs) => rs.filter((x) => x.key !== r.key))}>
                Remove
              </button>
            </div>
          </div>
        ))}
        <button
          type="button"
          class={buttonClass('default', true)}
          onClick={() => {
            setRows((rs) => [...rs, { key: nextKey, name: '', value: '' }]);
            setNextKey((k) => k + 1);
          }}
        >
          Add header
        </button>
      </fieldset>
      <InlineError>{error}</InlineError>
      <SubmitButton busy={busy}>Add receiver</SubmitButton>
    </form>
  );
}
