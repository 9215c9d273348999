/** Events: a live timeline of the Docker events of every node (or one), filterable by node,
 * type, action and name. The history comes from the hub's bounded ring; new events arrive
 * over SSE and the list keeps the newest few hundred. */
import type { JSX } from 'preact';
import { useEffect, useState } from 'preact/hooks';
import { Empty, ErrorState, Loading, PageHeader } from '../components/ui.tsx';
import { get, qs } from '../lib/api.ts';
import { dateTime } from '../lib/format.ts';
import { fleet } from '../lib/live.ts';
import { navigate, useLocation } from '../lib/router.ts';
import { useStore } from '../lib/store.ts';
import type { FleetEvent } from '../../protocol/fleet-events.ts';

const KEEP = 300;
const TYPES = ['container', 'image', 'volume', 'network'];

function link(e: FleetEvent): JSX.Element {
  if (e.type === 'container' && !e.action.startsWith('destroy')) {
    return (
      <a href={`/containers/${encodeURIComponent(e.node)}/${encodeURIComponent(e.id)}`} class="strong-link break">
        {e.name}
      </a>
    );
  }
  return <span class="strong break">{e.name.length > 40 ? `${e.name.slice(0, 24)}…` : e.name}</span>;
}

export function EventsPage(): JSX.Element {
  const loc = useLocation();
  const f = useStore(fleet);
  const filter = { node: loc.query.get('node') ?? '', type: loc.query.get('type') ?? '', action: loc.query.get('action') ?? '', name: loc.query.get('name') ?? '' };
  const [events, setEvents] = useState<FleetEvent[] | null>(null);
  const [error, setError] = useState<unknown>(null);
  const [live, setLive] = useState(false);
  const key = qs(filter);

  useEffect(() => {
    const ctl = new AbortController();
    setEvents(null);
    setError(null);
    let source: EventSource | null = null;
    get<FleetEvent[]>(`/api/v1/events${qs({ ...filter, limit: String(KEEP) })}`, { signal: ctl.signal })
      .then((initial) => {
        setEvents(initial);
        const after = initial[0]?.seq;
        source = new EventSource(`/api/v1/events/stream${key}`, { withCredentials: true });
        source.addEventListener('ready', () => setLive(true));
        source.addEventListener('error', () => setLive(false));
        source.addEventListener('docker', (m) => {
          const e = JSON.parse((m as MessageEvent<string>).data) as FleetEvent;
          if (after !== undefined && e.seq <= after) return;
          setEvents((list) => [e, ...(list ?? []).filter((x) => x.seq !== e.seq)].slice(0, KEEP));
        });
      })
      .catch((err) => {
        if (!ctl.signal.aborted) setError(err);
      });
    return () => {
      ctl.abort();
      source?.close();
      setLive(false);
    };
  }, [key]);

  const set = (k: keyof typeof filter, v: string): void => navigate(`/events${qs({ ...filter, [k]: v })}`, { replace: true });
  const nodes = (f.nodes ?? []).map((n) => n.name);

  return (
    <>
      <PageHeader
        title="Events"
        sub={
          <span role="status">
            {live ? 'Live' : 'Connecting…'}
            {events ? ` · ${events.length} shown` : ''}
          </span>
        }
      />
      <form class="filters" role="search" aria-label="Filter events" onSubmit={(e) => e.preventDefault()}>
        <div class="field">
          <label for="ev-node">Node</label>
          <select id="ev-node" value={filter.node} onChange={(e) => set('node', e.currentTarget.value)}>
            <option value="">All nodes</option>
            {nodes.map((n) => (
              <option key={n} value={n}>
                {n}
              </option>
            ))}
          </select>
        </div>
        <div class="field">
          <label for="ev-type">Type</label>
          <select id="ev-type" value={filter.type} onChange={(e) => set('type', e.currentTarget.value)}>
            <option value="">All types</option>
            {TYPES.map((t) => (
              <option key={t} value={t}>
                {t}
              </option>
            ))}
          </select>
        </div>
        <div class="field">
          <label for="ev-action">Action</label>
          <input id="ev-action" value={filter.action} placeholder="start, die…" autocomplete="off" onChange={(e) => set('action', e.currentTarget.value.trim())} />
        </div>
        <div class="field">
          <label for="ev-name">Name</label>
          <input id="ev-name" value={filter.name} autocomplete="off" onChange={(e) => set('name', e.currentTarget.value.trim())} />
        </div>
      </form>
      {events === null ? (
        error ? (
          <ErrorState error={error} title="Could not load events" />
        ) : (
          <Loading label="Loading events…" />
        )
      ) : events.length === 0 ? (
        <Empty title="No events yet">Events appear here as containers, images, volumes and networks change on your nodes.</Empty>
      ) : (
        <ol class="timeline" aria-label="Docker events, newest first">
          {events.map((e) => (
            <li key={e.seq} class="timeline-item">
              <time class="muted small nowrap" dateTime={new Date(e.time).toISOString()}>
                {dateTime(e.time)}
              </time>
              <span>
                {' '}
                <a href={`/events${qs({ ...filter, node: e.node })}`} style={{ textDecoration: 'underline' }}>
                  {e.node}
                </a>
                : {e.type} {link(e)} <strong>{e.action}</strong>
              </span>
              {Object.keys(e.detail).length > 0 && (
                <span class="muted small break">
                  {' '}
                  (
                  {Object.entries(e.detail)
                    .map(([k, v]) => `${k} ${v}`)
                    .join(', ')}
                  )
                </span>
              )}
            </li>
          ))}
        </ol>
      )}
    </>
  );
}
