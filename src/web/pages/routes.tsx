/** Routes: every ingress route that container labels claim on any node (GET /api/v1/routes),
 * with where it goes, who may use it, its certificate, whether it is served, and — per row — the
 * label mistake or conflict that keeps it from being served. Refreshed when the live feed says a
 * node or a container changed, and every few seconds for certificate states. */
import type { JSX } from 'preact';
import { useEffect, useMemo, useRef } from 'preact/hooks';
import { Empty, ErrorState, Loading, PageHeader, useAsync } from '../components/ui.tsx';
import type { RouteView } from '../../protocol/ingress.ts';
import { get } from '../lib/api.ts';
import { dateTime } from '../lib/format.ts';
import { containerName, fleet } from '../lib/live.ts';
import { useStore } from '../lib/store.ts';

/** A route as the hub lists it (`tls.error`: why the last ACME order for its host failed). */
export type RouteRow = RouteView;

const POLL_MS = 5000;
/** Feed changes closer together than this cause one reload. */
const FEED_SETTLE_MS = 150;

const CERT_TONE: Record<string, string> = { valid: 'ok', supplied: 'ok', expiring: 'warn', pending: 'info', failed: 'bad', none: 'muted' };
const CERT_HINT: Record<string, string> = {
  none: 'no certificate of its own yet: the edge presents the hub’s certificate',
  pending: 'a certificate is being ordered',
  valid: 'issued by ACME and in date',
  expiring: 'close to its expiry date and not yet renewed',
  failed: 'the last ACME order failed; an earlier certificate, if any, is still served',
  supplied: 'a certificate you supplied',
};

function routeName(r: RouteRow): string {
  return `${r.host === '' ? '(no host)' : r.host}${r.path === '/' ? '' : r.path}`;
}

/** Whether the row is served, and if not, why (the same reasons the edge gives). */
function serving(r: RouteRow): { tone: string; text: string; detail: string | null } {
  if (r.error !== null) {
    const conflict = r.error.startsWith('conflict:');
    return { tone: 'bad', text: conflict ? 'conflict' : 'label error', detail: conflict ? r.error.slice('conflict:'.length).trim() : r.error };
  }
  if (!r.nodeOnline) return { tone: 'bad', text: 'node offline', detail: 'answers 502 until the node is back' };
  if (!r.running) return { tone: 'warn', text: 'not running', detail: 'answers 503 until the container runs' };
  return { tone: 'ok', text: 'served', detail: null };
}

function Certificate({ tls }: { tls: RouteRow['tls'] }): JSX.Element {
  return (
    <>
      <span class={`badge badge-${CERT_TONE[tls.state] ?? 'muted'}`} title={CERT_HINT[tls.state]}>
        <span class="dot" aria-hidden="true" />
        {tls.state}
      </span>
      {tls.notAfter && <div class="muted small nowrap">until {dateTime(tls.notAfter)}</div>}
      {tls.error && <div class="small bad-text cert-error">{tls.error}</div>}
    </>
  );
}

function EmptyRoutes(): JSX.Element {
  return (
    <Empty title="No routes yet">
      <p>
        A container becomes reachable at a host name through the hub’s edge port (<code>dockfleet hub --edge-listen HOST:PORT</code>) when it carries ingress labels, on any node:
      </p>
      <pre class="mono small">docker run -d --label dockfleet.ingress.host=shop.example.com \{'\n'} --label dockfleet.ingress.port=8080 my/app</pre>
      <p>
        Also <code>dockfleet.ingress.path</code> (a prefix), <code>.protocol</code> (http, h2c or https) and <code>.access</code> (public, users or a role); <code>dockfleet.ingress.1.host</code> and
        so on for several routes on one container. Mistakes in the labels show here, on the route’s row.
      </p>
    </Empty>
  );
}

export function RoutesPage(): JSX.Element {
  const f = useStore(fleet);
  const state = useAsync((signal) => get<RouteRow[]>('/api/v1/routes', { signal }), []);
  const reload = state.reload;

  useEffect(() => {
    const t = setInterval(reload, POLL_MS);
    return () => clearInterval(t);
  }, []);
  // A container started, stopped or relabelled, or a node came or went: the routes follow.
  const first = useRef(true);
  useEffect(() => {
    if (first.current) {
      first.current = false;
      return undefined;
    }
    const t = setTimeout(reload, FEED_SETTLE_MS);
    return () => clearTimeout(t);
  }, [f.containers, f.nodes]);

  /** node → container name → id, so a row links to the container page by id when the feed knows it. */
  const ids = useMemo(() => {
    const byNode = new Map<string, Map<string, string>>();
    for (const [node, items] of f.containers) byNode.set(node, new Map(items.map((c) => [containerName(c), c.Id])));
    return byNode;
  }, [f.containers]);

  const routes = state.data;
  const problems = routes?.filter((r) => r.error !== null).length ?? 0;
  const sub =
    routes && routes.length > 0
      ? `${routes.length} ${routes.length === 1 ? 'route' : 'routes'}${problems > 0 ? `, ${problems} not served because of ${problems === 1 ? 'a mistake or conflict' : 'mistakes or conflicts'}` : ''}`
      : undefined;

  return (
    <>
      <PageHeader title="Routes" sub={sub} />
      {routes === undefined ? (
        state.error ? (
          <ErrorState error={state.error} onRetry={reload} title="Could not load routes" />
        ) : (
          <Loading label="Loading routes…" />
        )
      ) : routes.length === 0 ? (
        <EmptyRoutes />
      ) : (
        <div class="table-wrap">
          <table class="table responsive routes-table">
            <caption class="sr-only">Ingress routes from container labels, with their node, container, certificate and whether each is served</caption>
            <thead>
              <tr>
                <th scope="col">Route</th>
                <th scope="col">Node</th>
                <th scope="col">Container</th>
                <th scope="col">Port</th>
                <th scope="col">Access</th>
                <th scope="col">Certificate</th>
                <th scope="col">Status</th>
              </tr>
            </thead>
            <tbody>
              {routes.map((r) => {
                const s = serving(r);
                const id = ids.get(r.node)?.get(r.container) ?? r.container;
                return (
                  <tr key={`${r.node}/${r.container}/${r.host}${r.path}`} class={`route-row route-${s.text.replace(/ /g, '-')}`}>
                    <td data-label="Route" class="cell-name">
                      <span class="strong mono">{routeName(r)}</span>
                    </td>
                    <td data-label="Node" class="nowrap">
                      <a href={`/containers?node=${encodeURIComponent(r.node)}`}>{r.node}</a>
                    </td>
                    <td data-label="Container">
                      <a href={`/containers/${encodeURIComponent(r.node)}/${encodeURIComponent(id)}`}>{r.container}</a>
                    </td>
                    <td data-label="Port" class="nowrap">
                      {r.port ?? '—'} <span class="muted small">{r.protocol}</span>
                    </td>
                    <td data-label="Access">{r.access}</td>
                    <td data-label="Certificate">
                      <Certificate tls={r.tls} />
                    </td>
                    <td data-label="Status">
                      <span class={`badge badge-${s.tone}`}>
                        <span class="dot" aria-hidden="true" />
                        {s.text}
                      </span>
                      {s.detail && <div class={`small route-detail ${s.tone === 'bad' ? 'bad-text' : 'muted'}`}>{s.detail}</div>}
                    </td>
                  </tr>
                );
              })}
            </tbody>
          </table>
        </div>
      )}
    </>
  );
}
