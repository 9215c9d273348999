/** The shell: session gate, navigation, routes, and the hosts for dialogs and toasts. */
import type { ComponentChildren, JSX } from 'preact';
import { useEffect, useRef, useState } from 'preact/hooks';
import { ConfirmHost } from './components/dialog.tsx';
import { Icon } from './components/icons.tsx';
import { ToastHost } from './components/toasts.tsx';
import { ErrorState, Loading, Spinner, buttonClass } from './components/ui.tsx';
import { errorMessage } from './lib/api.ts';
import { fleet, startLive } from './lib/live.ts';
import { match, navigate, onLinkClick, useLocation } from './lib/router.ts';
import { loadSession, session, signOut } from './lib/session.ts';
import { useStore } from './lib/store.ts';
import type { Me } from './lib/types.ts';
import { lazyPage } from './lib/lazy-page.tsx';
import { ContainersPage } from './pages/containers.tsx';
import { NodesPage } from './pages/nodes.tsx';
import { SignInPage } from './pages/sign-in.tsx';
import { EDGE_SIGN_IN_PATH, EdgeSignInPage, edgeSignInHost } from './pages/edge-sign-in.tsx';

// Nodes (the landing page), Containers and sign-in come with the first load; every other page is a
// chunk of its own, fetched when its route is first visited (issue 12: first load ≤ 60 KB of gzipped JS).
// The container detail page is lazy too: it carries logs, files, the terminal and its actions.
const ContainerPage = lazyPage(() => import('./pages/container.tsx').then((m) => m.ContainerPage), 'Loading the container…');
const RunContainerPage = lazyPage(() => import('./pages/run-container.tsx').then((m) => m.RunContainerPage));
const ContainerEditPage = lazyPage(() => import('./pages/container-edit.tsx').then((m) => m.ContainerEditPage));
const resources = (): Promise<typeof import('./pages/resources.tsx')> => import('./pages/resources.tsx');
const FleetResources = lazyPage(() => resources().then((m) => m.FleetResources));
const ImagesPage = lazyPage(() => resources().then((m) => m.ImagesPage));
const VolumesPage = lazyPage(() => resources().then((m) => m.VolumesPage));
const NetworksPage = lazyPage(() => resources().then((m) => m.NetworksPage));
const VolumeFilesPage = lazyPage(() => import('./pages/volume-files.tsx').then((m) => m.VolumeFilesPage));
const VolumeBackupsPage = lazyPage(() => import('./pages/volume-backups.tsx').then((m) => m.VolumeBackupsPage), 'Loading the backups…');
const StacksPage = lazyPage(() => import('./pages/stacks.tsx').then((m) => m.StacksPage));
const StackDeployPage = lazyPage(() => import('./pages/stack-deploy.tsx').then((m) => m.StackDeployPage));
const StackPage = lazyPage(() => import('./pages/stack.tsx').then((m) => m.StackPage));
const JobsPage = lazyPage(() => import('./pages/jobs.tsx').then((m) => m.JobsPage));
const JobPage = lazyPage(() => import('./pages/job.tsx').then((m) => m.JobPage));
const RoutesPage = lazyPage(() => import('./pages/routes.tsx').then((m) => m.RoutesPage));
const AlertsPage = lazyPage(() => import('./pages/alerts.tsx').then((m) => m.AlertsPage));
const EventsPage = lazyPage(() => import('./pages/events.tsx').then((m) => m.EventsPage));
const AuditPage = lazyPage(() => import('./pages/audit.tsx').then((m) => m.AuditPage));
const PeoplePage = lazyPage(() => import('./pages/people.tsx').then((m) => m.PeoplePage));
const AccountPage = lazyPage(() => import('./pages/account.tsx').then((m) => m.AccountPage));

export function App(): JSX.Element {
  const s = useStore(session);
  // An app on the edge sent the browser here to sign in: signed in, it goes straight back (no shell).
  const handOff = useLocation().path === EDGE_SIGN_IN_PATH;
  useEffect(() => void loadSession(), []);
  useEffect(() => {
    document.addEventListener('click', onLinkClick);
    return () => document.removeEventListener('click', onLinkClick);
  }, []);
  let body: JSX.Element;
  if (s.status === 'loading')
    body = (
      <div class="center-page">
        <Loading label="Loading dockfleet…" />
      </div>
    );
  else if (s.status === 'error')
    body = (
      <div class="center-page">
        <ErrorState title="The hub did not answer" error={s.message} onRetry={() => void loadSession()} />
      </div>
    );
  else if (s.status === 'signedOut') {
    const reason = s.reason ?? (handOff ? `Sign in to continue to ${edgeSignInHost()}.` : undefined);
    body = <SignInPage setupNeeded={s.setupNeeded} {...(reason ? { reason } : {})} />;
  } else body = handOff ? <EdgeSignInPage me={s.me} /> : <Shell me={s.me} />;
  return (
    <>
      {body}
      <ConfirmHost />
      <ToastHost />
    </>
  );
}

interface NavItem {
  href: string;
  label: string;
  icon: string;
  active: (path: string) => boolean;
  /** Across the whole fleet: not offered to a user limited to granted nodes (the hub refuses it). */
  fleetWide?: true;
}

const NAV: NavItem[] = [
  { href: '/nodes', label: 'Nodes', icon: 'nodes', active: (p) => p === '/nodes' || p === '/' },
  { href: '/containers', label: 'Containers', icon: 'containers', active: (p) => p.startsWith('/containers') },
  { href: '/stacks', label: 'Stacks', icon: 'stacks', active: (p) => p.startsWith('/stacks'), fleetWide: true },
  { href: '/jobs', label: 'Jobs', icon: 'jobs', active: (p) => p.startsWith('/jobs'), fleetWide: true },
  { href: '/routes', label: 'Routes', icon: 'link', active: (p) => p.startsWith('/routes') },
  { href: '/images', label: 'Images', icon: 'images', active: (p) => p === '/images' || /^\/nodes\/[^/]+\/images$/.test(p) },
  { href: '/volumes', label: 'Volumes', icon: 'volumes', active: (p) => p === '/volumes' || /^\/nodes\/[^/]+\/volumes(\/|$)/.test(p) },
  { href: '/networks', label: 'Networks', icon: 'networks', active: (p) => p === '/networks' || /^\/nodes\/[^/]+\/networks$/.test(p) },
  { href: '/alerts', label: 'Alerts', icon: 'info', active: (p) => p.startsWith('/alerts'), fleetWide: true },
  { href: '/events', label: 'Events', icon: 'jobs', active: (p) => p.startsWith('/events') },
  { href: '/audit', label: 'Audit', icon: 'audit', active: (p) => p.startsWith('/audit') },
  { href: '/people', label: 'People', icon: 'account', active: (p) => p.startsWith('/people'), fleetWide: true },
  { href: '/account', label: 'Account', icon: 'account', active: (p) => p.startsWith('/account') },
];

function LiveIndicator(): JSX.Element {
  const f = useStore(fleet);
  const text = f.mode === 'live' ? 'Live' : f.mode === 'polling' ? 'Polling' : f.mode === 'reconnecting' ? 'Reconnecting…' : 'Connecting…';
  const title = f.mode === 'live' ? 'Updates stream from the hub as they happen' : f.mode === 'polling' ? 'The live stream is unavailable; refreshing every few seconds' : 'Connecting to the hub';
  return (
    <span class={`live live-${f.mode}`} title={title}>
      <span class="dot" aria-hidden="true" />
      <span class="label">{text}</span>
    </span>
  );
}

function Shell({ me }: { me: Me }): JSX.Element {
  const loc = useLocation();
  const [menuOpen, setMenuOpen] = useState(false);
  const [signingOut, setSigningOut] = useState(false);
  const mainRef = useRef<HTMLElement>(null);
  const lastPath = useRef(loc.path);

  useEffect(() => {
    startLive();
  }, []);

  useEffect(() => {
    setMenuOpen(false);
    if (lastPath.current !== loc.path) {
      lastPath.current = loc.path;
      mainRef.current?.focus({ preventScroll: true });
    }
  }, [loc.path]);

  useEffect(() => {
    if (!menuOpen) return;
    const onKey = (e: KeyboardEvent): void => {
      if (e.key === 'Escape') setMenuOpen(false);
    };
    document.addEventListener('keydown', onKey);
    return () => document.removeEventListener('keydown', onKey);
  }, [menuOpen]);

  const doSignOut = async (): Promise<void> => {
    setSigningOut(true);
    try {
      await signOut();
      navigate('/', { replace: true });
    } catch (err) {
      setSigningOut(false);
      console.error(errorMessage(err));
    }
  };

  return (
    <div class={`shell${menuOpen ? ' menu-open' : ''}`}>
      <a
        class="skip-link"
        href="#main"
        onClick={(e) => {
          e.preventDefault();
          mainRef.current?.focus();
        }}
      >
        Skip to content
      </a>
      <header class="sidebar">
        <div class="brand-row">
          <a class="brand" href="/nodes" aria-label="dockfleet home">
            <svg viewBox="0 0 32 32" width="26" height="26" aria-hidden="true">
              <rect width="32" height="32" rx="7" fill="var(--accent)" />
              <path d="M7 19h18l-2 6H9z M9 13h4v4H9z M14 13h4v4h-4z M19 13h4v4h-4z M14 8h4v4h-4z" fill="#fff" />
            </svg>
            <span class="label">dockfleet</span>
          </a>
          <button type="button" class="icon-btn menu-btn" aria-expanded={menuOpen ? 'true' : 'false'} aria-controls="main-nav" onClick={() => setMenuOpen((o) => !o)}>
            <Icon name={menuOpen ? 'close' : 'menu'} size={22} />
            <span class="sr-only">Menu</span>
          </button>
        </div>
        <nav id="main-nav" class="nav" aria-label="Main">
          <ul>
            {NAV.filter((n) => !(me.scoped && n.fleetWide)).map((n) => {
              const active = n.active(loc.path);
              return (
                <li key={n.href}>
                  <a href={n.href} class={active ? 'active' : ''} aria-current={active ? 'page' : undefined} title={n.label}>
                    <Icon name={n.icon} />
                    <span class="label">{n.label}</span>
                  </a>
                </li>
              );
            })}
          </ul>
          <div class="nav-foot">
            <LiveIndicator />
            <div class="whoami">
              <span class="who-name" title={me.name}>
                {me.name}
              </span>
              <span class="who-role">{me.scoped ? 'granted nodes' : me.role}</span>
            </div>
            <button type="button" class={buttonClass('ghost', true, 'signout')} onClick={() => void doSignOut()} disabled={signingOut} aria-busy={signingOut ? 'true' : undefined}>
              {signingOut ? <Spinner /> : <Icon name="signout" size={16} />}
              <span class="label">Sign out</span>
            </button>
          </div>
        </nav>
      </header>
      <main id="main" ref={mainRef} tabIndex={-1} class="main">
        <Routes path={loc.path} me={me} />
      </main>
    </div>
  );
}

function Title({ title, children }: { title: string; children: ComponentChildren }): JSX.Element {
  useEffect(() => {
    document.title = `${title} · dockfleet`;
  }, [title]);
  return <>{children}</>;
}

function Redirect({ to }: { to: string }): null {
  useEffect(() => navigate(to, { replace: true }), [to]);
  return null;
}

function FleetWideOnly(): JSX.Element {
  return (
    <Title title="Not available">
      <div class="state state-empty">
        <h1 class="state-title">Not available to your account</h1>
        <p class="state-body">Your account reaches only the hosts granted to it; this page covers the whole fleet.</p>
        <a class={buttonClass('primary')} href="/nodes">
          Go to your nodes
        </a>
      </div>
    </Title>
  );
}

function Routes({ path, me }: { path: string; me: Me }): JSX.Element | null {
  let m: Record<string, string> | null;
  if (path === '/' || path === '') return <Redirect to="/nodes" />;
  // A page across the fleet, reached by a link or typed URL: say so instead of asking the hub for a refusal.
  if (me.scoped && NAV.some((n) => n.fleetWide && n.active(path))) return <FleetWideOnly />;
  if (match('/nodes', path))
    return (
      <Title title="Nodes">
        <NodesPage me={me} />
      </Title>
    );
  if ((m = match('/nodes/:node', path))) return <Redirect to={`/containers?node=${encodeURIComponent(m.node!)}`} />;
  if (match('/containers', path))
    return (
      <Title title="Containers">
        <ContainersPage me={me} />
      </Title>
    );
  if (match('/containers/run', path))
    return (
      <Title title="Run a container">
        <RunContainerPage me={me} />
      </Title>
    );
  if ((m = match('/containers/:node/:id/edit', path)))
    return (
      <Title title="Change a container">
        <ContainerEditPage me={me} node={m.node!} id={m.id!} />
      </Title>
    );
  // ContainerPage sets the document title itself (the container's name).
  if ((m = match('/containers/:node/:id', path))) return <ContainerPage me={me} node={m.node!} id={m.id!} tab="overview" />;
  if ((m = match('/containers/:node/:id/logs', path))) return <ContainerPage me={me} node={m.node!} id={m.id!} tab="logs" />;
  if ((m = match('/containers/:node/:id/terminal', path))) return <ContainerPage me={me} node={m.node!} id={m.id!} tab="terminal" />;
  if ((m = match('/containers/:node/:id/files', path))) return <ContainerPage me={me} node={m.node!} id={m.id!} tab="files" />;
  if (match('/images', path)) return <FleetResources me={me} kind="images" />;
  if (match('/volumes', path)) return <FleetResources me={me} kind="volumes" />;
  if (match('/networks', path)) return <FleetResources me={me} kind="networks" />;
  if ((m = match('/nodes/:node/images', path)))
    return (
      <Title title="Images">
        <ImagesPage me={me} node={m.node!} />
      </Title>
    );
  if ((m = match('/nodes/:node/volumes', path)))
    return (
      <Title title="Volumes">
        <VolumesPage me={me} node={m.node!} />
      </Title>
    );
  if ((m = match('/nodes/:node/networks', path)))
    return (
      <Title title="Networks">
        <NetworksPage me={me} node={m.node!} />
      </Title>
    );
  if ((m = match('/nodes/:node/volumes/:vol/files', path)))
    return (
      <Title title="Files">
        <VolumeFilesPage me={me} node={m.node!} volume={m.vol!} />
      </Title>
    );
  // VolumeBackupsPage sets the document title itself (the volume's name).
  if ((m = match('/nodes/:node/volumes/:vol/backups', path))) return <VolumeBackupsPage me={me} node={m.node!} volume={m.vol!} />;
  if (match('/stacks', path))
    return (
      <Title title="Stacks">
        <StacksPage me={me} />
      </Title>
    );
  if (match('/stacks/deploy', path))
    return (
      <Title title="Deploy a stack">
        <StackDeployPage me={me} />
      </Title>
    );
  if ((m = match('/stacks/:name', path)))
    return (
      <Title title={m.name!}>
        <StackPage me={me} name={m.name!} />
      </Title>
    );
  if (match('/jobs', path))
    return (
      <Title title="Jobs">
        <JobsPage />
      </Title>
    );
  if ((m = match('/jobs/:id', path)))
    return (
      <Title title="Job">
        <JobPage id={m.id!} />
      </Title>
    );
  if (match('/routes', path))
    return (
      <Title title="Routes">
        <RoutesPage />
      </Title>
    );
  if (match('/alerts', path))
    return (
      <Title title="Alerts">
        <AlertsPage me={me} />
      </Title>
    );
  if (match('/events', path))
    return (
      <Title title="Events">
        <EventsPage />
      </Title>
    );
  if (match('/audit', path))
    return (
      <Title title="Audit">
        <AuditPage />
      </Title>
    );
  if (match('/people', path))
    return (
      <Title title="People">
        <PeoplePage />
      </Title>
    );
  if (match('/account', path))
    return (
      <Title title="Account">
        <AccountPage me={me} />
      </Title>
    );
  return (
    <Title title="Not found">
      <div class="state state-empty">
        <h1 class="state-title">Page not found</h1>
        <p class="state-body">
          Nothing lives at <code>{path}</code>.
        </p>
        <a class={buttonClass('primary')} href="/nodes">
          Go to nodes
        </a>
      </div>
    </Title>
  );
}
