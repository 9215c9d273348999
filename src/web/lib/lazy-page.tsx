/**
 * Pages off the first screen, loaded when their route is first visited: `lazyPage(() =>
 * import('../pages/x.tsx').then((m) => m.XPage), 'Loading x…')` gives a component that renders
 * the app's Loading state while the chunk arrives, the page once it has, and the app's ErrorState
 * with a Retry if the chunk cannot be fetched (offline, or the hub restarted with a new build).
 * esbuild's code splitting turns each `import()` into its own chunk, so the first load stays small.
 */
import type { ComponentType, JSX } from 'preact';
import { useEffect, useState } from 'preact/hooks';
import { ErrorState, Loading } from '../components/ui.tsx';

type Loader<P> = () => Promise<ComponentType<P>>;

export function lazyPage<P extends object>(load: Loader<P>, label = 'Loading…'): (props: P) => JSX.Element {
  // One fetch per page for the whole session: once here, later visits render at once.
  let loaded: ComponentType<P> | null = null;
  let pending: Promise<ComponentType<P>> | null = null;
  const fetchPage = (): Promise<ComponentType<P>> => {
    pending ??= withRetries(load).then(
      (c) => (loaded = c),
      (err: unknown) => {
        pending = null; // a Retry fetches again
        throw err;
      },
    );
    return pending;
  };

  return function LazyPage(props: P): JSX.Element {
    const [, setReady] = useState(0);
    const [error, setError] = useState<unknown>(null);
    const [attempt, setAttempt] = useState(0);
    useEffect(() => {
      if (loaded) return;
      let live = true;
      fetchPage().then(
        () => live && setReady((n) => n + 1),
        (err: unknown) => live && setError(err),
      );
      return () => void (live = false);
    }, [attempt]);
    if (loaded) {
      const Page = loaded;
      return <Page {...props} />;
    }
    if (error !== null) {
      const retry = (): void => {
        setError(null);
        setAttempt((n) => n + 1);
      };
      return <ErrorState title="This page could not be loaded" error={chunkError(error)} onRetry={retry} />;
    }
    return <Loading label={label} />;
  };
}

/** A dropped fetch (Chromium aborts loads when the host's network changes) is tried twice more, quietly. */
async function withRetries<T>(load: () => Promise<T>): Promise<T> {
  for (const wait of [300, 1000]) {
    try {
      return await load();
    } catch {
      await new Promise((r) => setTimeout(r, wait));
    }
  }
  return load();
}

/** Browsers word a failed chunk fetch tersely ("Failed to fetch dynamically imported module: …"). */
function chunkError(err: unknown): string {
  const detail = err instanceof Error ? err.message : String(err);
  return `The hub did not send this page's code (${detail}). Check the connection, or reload if the hub was updated.`;
}
