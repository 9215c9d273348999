/** One container: key facts from inspect, raw JSON, logs, a terminal and its files. */
import type { JSX } from 'preact';
import { useEffect, useMemo } from 'preact/hooks';
import { Icon } from '../components/icons.tsx';
import { AsyncView, ErrorState, KeyFacts, Loading, RawJson, StatusBadge, useAsync } from '../components/ui.tsx';
import { canChange } from '../lib/access.ts';
import { dockerPath, get } from '../lib/api.ts';
import { ago, bytes, dateTime, shortId } from '../lib/format.ts';
import { containerName, fleet } from '../lib/live.ts';
import { navigate } from '../lib/router.ts';
import { useStore } from '../lib/store.ts';
import type { ContainerInspect, Me } from '../lib/types.ts';
import { ContainerActions } from './containers.tsx';
import { LogsView } from './logs.tsx';
import { TerminalView } from './terminal.tsx';
import { ContainerMoreActions } from './container-more-actions.tsx';
import { StatsSection } from '../components/stats-section.tsx';
import { ContainerFilesView } from './container-files.tsx';

type Tab = 'overview' | 'logs' | 'terminal' | 'files';

export function ContainerPage({ me, node, id, tab }: { me: Me; node: string; id: string; tab: Tab }): JSX.Element {
  const f = useStore(fleet);
  const listed = useMemo(() => f.containers.get(node)?.find((c) => c.Id === id || c.Id.startsWith(id) || containerName(c) === id), [f.containers, node, id]);
  // Inspect again whenever the stream reports a different state or status.
  const stamp = listed ? `${listed.State}|${listed.Status}` : '';
  const inspect = useAsync((signal) => get<ContainerInspect>(dockerPath(node, `/containers/${encodeURIComponent(id)}/json`), { signal }), [node, id, stamp]);
  const info = inspect.data;
  const name = info ? info.Name.replace(/^\//, '') : listed ? containerName(listed) : shortId(id);
  const state = info?.State.Status ?? listed?.State ?? '';
  const nodeOnline = f.nodes?.find((n) => n.name === node)?.status === 'online';
  // The user's role on this node (global role and grants), as the hub will judge the action.
  const mayChange = canChange(me, node);

  // Removed while shown (the stream no longer lists it and inspect says 404): back to the list.
  const gone = !listed && f.containers.has(node) && (inspect.error as { status?: number } | null)?.status === 404;
  useEffect(() => {
    if (gone && tab === 'overview') {
      const t = setTimeout(() => navigate('/containers', { replace: true }), 1500);
      return () => clearTimeout(t);
    }
    return undefined;
  }, [gone, tab]);

  useEffect(() => {
    document.title = `${name}${tab === 'overview' ? '' : ` ${tab}`} · ${node} · dockfleet`;
  }, [name, tab, node]);

  const base = `/containers/${encodeURIComponent(node)}/${encodeURIComponent(id)}`;
  const tabs: Array<[Tab, string, string, string]> = [
    ['overview', 'Overview', base, 'info'],
    ['logs', 'Logs', `${base}/logs`, 'logs'],
    ['terminal', 'Terminal', `${base}/terminal`, 'terminal'],
    ['files', 'Files', `${base}/files`, 'folder'],
  ];

  return (
    <>
      <nav class="crumbs" aria-label="Breadcrumb">
        <ol>
          <li>
            <a href="/containers">Containers</a>
          </li>
          <li>
            <a href={`/containers?node=${encodeURIComponent(node)}`}>{node}</a>
          </li>
          <li aria-current="page">{name}</li>
        </ol>
      </nav>
      <div class="page-header">
        <div class="page-title">
          <h1>
            {name} {state && <StatusBadge status={state} />}
          </h1>
          <div class="page-sub">
            {info ? (info.Config.Image ?? info.Image) : (listed?.Image ?? '')} · on <a href={`/containers?node=${encodeURIComponent(node)}`}>{node}</a>
            {info && <> · {since(info)}</>}
          </div>
        </div>
        <div class="page-actions">
          {(info || listed) && <ContainerActions c={{ node, Id: info?.Id ?? listed!.Id, name, State: state }} canWrite={mayChange && nodeOnline} />}
          {info && mayChange && nodeOnline && <ContainerMoreActions node={node} id={info.Id} name={name} paused={info.State.Paused === true} running={info.State.Running} />}
        </div>
      </div>
      <nav class="tabs" aria-label="Container views">
        {tabs.map(([t, label, href, icon]) => (
          <a key={t} href={href} class={t === tab ? 'active' : ''} aria-current={t === tab ? 'page' : undefined}>
            <Icon name={icon} size={16} />
            {label}
          </a>
        ))}
      </nav>
      {gone ? (
        <ErrorState title="This container no longer exists" error="It was removed. Going back to the list…" />
      ) : tab === 'overview' ? (
        <AsyncView state={inspect} loadingLabel="Inspecting…" errorTitle="Could not inspect this container">
          {(d) => (
            <>
              {d.State.Running && nodeOnline && <StatsSection key={`${node}/${d.Id}`} node={node} id={d.Id} />}
              <Overview info={d} />
            </>
          )}
        </AsyncView>
      ) : tab === 'logs' ? (
        info ? (
          <LogsView key={`${node}/${id}`} node={node} id={id} name={name} tty={info.Config.Tty === true} running={info.State.Running} />
        ) : inspect.error ? (
          <ErrorState error={inspect.error} onRetry={inspect.reload} title="Could not inspect this container" />
        ) : (
          <Loading label="Inspecting…" />
        )
      ) : tab === 'files' ? (
        <ContainerFilesView key={`${node}/${id}`} node={node} id={id} name={name} canWrite={mayChange && nodeOnline} />
      ) : info ? (
        <TerminalView key={`${node}/${id}`} node={node} id={id} name={name} running={info.State.Running} canWrite={mayChange} />
      ) : inspect.error ? (
        <ErrorState error={inspect.error} onRetry={inspect.reload} title="Could not inspect this container" />
      ) : (
        <Loading label="Inspecting…" />
      )}
    </>
  );
}

function since(info: ContainerInspect): string {
  const s = info.State;
  if (s.Running) return `started ${ago(s.StartedAt ?? null)}`;
  if (s.FinishedAt && !s.FinishedAt.startsWith('0001')) return `exited (${s.ExitCode ?? '?'}) ${ago(s.FinishedAt)}`;
  return `created ${ago(info.Created)}`;
}

function Overview({ info }: { info: ContainerInspect }): JSX.Element {
  const s = info.State;
  const cmd = [...(info.Config.Entrypoint ?? []), ...(info.Config.Cmd ?? [])];
  const rp = info.HostConfig?.RestartPolicy;
  const portMap = info.NetworkSettings?.Ports ?? {};
  const published = Object.entries(portMap).flatMap(([k, v]) => (v?.length ? v.map((b) => `${b.HostIp && b.HostIp !== '0.0.0.0' && b.HostIp !== '::' ? `${b.HostIp}:` : ''}${b.HostPort}→${k}`) : [k]));
  const uniquePublished = [...new Set(published)];
  const networks = Object.entries(info.NetworkSettings?.Networks ?? {});
  const labels = Object.entries(info.Config.Labels ?? {}).sort(([a], [b]) => a.localeCompare(b));
  const env = info.Config.Env ?? [];
  return (
    <div class="overview">
      <section class="card">
        <h2 class="card-title">State</h2>
        <KeyFacts
          items={[
            ['Status', <StatusBadge key="s" status={s.Health ? `${s.Status}` : s.Status} />],
            s.Health ? ['Health', <StatusBadge key="h" status={s.Health.Status} />] : null,
            ['Started', s.StartedAt && !s.StartedAt.startsWith('0001') ? <span title={dateTime(s.StartedAt)}>{ago(s.StartedAt)}</span> : '—'],
            !s.Running && s.FinishedAt && !s.FinishedAt.startsWith('0001') ? ['Finished', <span title={dateTime(s.FinishedAt)}>{ago(s.FinishedAt)}</span>] : null,
            !s.Running ? ['Exit code', String(s.ExitCode ?? '—')] : null,
            s.OOMKilled ? ['OOM killed', 'yes'] : null,
            s.Error ? ['Error', <span class="bad-text">{s.Error}</span>] : null,
            ['Restart policy', rp?.Name ? `${rp.Name}${rp.MaximumRetryCount ? ` (max ${rp.MaximumRetryCount})` : ''}` : 'no'],
            ['Restarts', String(info.RestartCount ?? 0)],
            s.Running && s.Pid ? ['PID', String(s.Pid)] : null,
          ]}
        />
      </section>
      <section class="card">
        <h2 class="card-title">Configuration</h2>
        <KeyFacts
          items={[
            ['ID', <code class="break">{info.Id}</code>],
            [
              'Image',
              <span>
                <span class="break">{info.Config.Image}</span> <span class="muted small mono">{shortId(info.Image)}</span>
              </span>,
            ],
            ['Created', <span title={dateTime(info.Created)}>{ago(info.Created)}</span>],
            ['Command', cmd.length ? <code class="break">{cmd.join(' ')}</code> : '—'],
            info.Config.WorkingDir ? ['Working dir', <code>{info.Config.WorkingDir}</code>] : null,
            ['User', info.Config.User || 'root (image default)'],
            ['TTY', info.Config.Tty ? 'yes' : 'no'],
            info.HostConfig?.Privileged ? ['Privileged', <span class="bad-text">yes</span>] : null,
            info.HostConfig?.Memory ? ['Memory limit', bytes(info.HostConfig.Memory)] : null,
            info.HostConfig?.NanoCpus ? ['CPU limit', `${info.HostConfig.NanoCpus / 1e9} CPUs`] : null,
          ]}
        />
      </section>
      <section class="card">
        <h2 class="card-title">Network</h2>
        <KeyFacts
          items={[
            ['Mode', info.HostConfig?.NetworkMode ?? '—'],
            [
              'Ports',
              uniquePublished.length ? (
                <span>
                  {uniquePublished.map((p) => (
                    <span key={p} class="chip mono">
                      {p}
                    </span>
                  ))}
                </span>
              ) : (
                '—'
              ),
            ],
            ...networks.map(([n, v]): [string, JSX.Element | string] => [n, v.IPAddress ? <code>{v.IPAddress}</code> : 'no address']),
          ]}
        />
      </section>
      <section class="card">
        <h2 class="card-title">Mounts</h2>
        {info.Mounts && info.Mounts.length > 0 ? (
          <ul class="plain-list">
            {info.Mounts.map((m) => (
              <li key={m.Destination}>
                <code>{m.Destination}</code> ←{' '}
                {m.Type === 'volume' ? (
                  <>
                    volume <strong>{m.Name}</strong>
                  </>
                ) : (
                  <>
                    {m.Type} <code class="break">{m.Source}</code>
                  </>
                )}
                {m.RW === false && <span class="chip">read-only</span>}
              </li>
            ))}
          </ul>
        ) : (
          <p class="muted">No mounts.</p>
        )}
      </section>
      <section class="card span-2">
        <details>
          <summary>Labels ({labels.length})</summary>
          {labels.length ? (
            <dl class="kv-list">
              {labels.map(([k, v]) => (
                <div key={k}>
                  <dt>{k}</dt>
                  <dd>{v || <span class="muted">(empty)</span>}</dd>
                </div>
              ))}
            </dl>
          ) : (
            <p class="muted">No labels.</p>
          )}
        </details>
        <details>
          <summary>Environment ({env.length})</summary>
          <p class="muted small">Values may hold secrets.</p>
          <ul class="plain-list mono small">
            {env.map((e) => (
              <li key={e} class="break">
                {e}
              </li>
            ))}
          </ul>
        </details>
        <RawJson value={info} summary="Raw JSON (docker inspect)" />
      </section>
    </div>
  );
}
