/** Client-side routing on the History API (no hashes): the hub serves index.html for every route. */
import { useEffect, useState } from 'preact/hooks';

export interface Location {
  path: string;
  query: URLSearchParams;
  /** path + search, for comparisons */
  href: string;
}

type Listener = (loc: Location) => void;
const listeners = new Set<Listener>();

function current(): Location {
  return { path: window.location.pathname, query: new URLSearchParams(window.location.search), href: window.location.pathname + window.location.search };
}

let loc = current();

function emit(): void {
  loc = current();
  for (const l of listeners) l(loc);
}

window.addEventListener('popstate', emit);

export function navigate(to: string, opts: { replace?: boolean } = {}): void {
  const target = new URL(to, window.location.href);
  const href = target.pathname + target.search;
  if (href === loc.href) return;
  if (opts.replace) window.history.replaceState(null, '', href);
  else window.history.pushState(null, '', href);
  emit();
  if (!opts.replace) window.scrollTo(0, 0);
}

/** Updates the query string in place (filters), without a new history entry. */
export function setQuery(params: Record<string, string | null | undefined>): void {
  const q = new URLSearchParams(window.location.search);
  for (const [k, v] of Object.entries(params)) {
    if (v === null || v === undefined || v === '') q.delete(k);
    else q.set(k, v);
  }
  const s = q.toString();
  navigate(window.location.pathname + (s ? `?${s}` : ''), { replace: true });
}

export function useLocation(): Location {
  const [l, setL] = useState(loc);
  useEffect(() => {
    listeners.add(setL);
    if (loc !== l) setL(loc);
    return () => void listeners.delete(setL);
  }, []);
  return l;
}

/** Matches `/containers/:node/:id/logs`-style patterns; params are URL-decoded. */
export function match(pattern: string, path: string): Record<string, string> | null {
  const p = pattern.split('/').filter(Boolean);
  const s = path.split('/').filter(Boolean);
  if (p.length !== s.length) return null;
  const params: Record<string, string> = {};
  for (let i = 0; i < p.length; i++) {
    const seg = p[i]!;
    const val = s[i]!;
    if (seg.startsWith(':')) {
      try {
        params[seg.slice(1)] = decodeURIComponent(val);
      } catch {
        return null;
      }
    } else if (seg !== val) return null;
  }
  return params;
}

/** Handles clicks on same-origin links (plain left click without modifiers) with navigate(). */
export function onLinkClick(e: MouseEvent): void {
  if (e.defaultPrevented || e.button !== 0 || e.metaKey || e.ctrlKey || e.shiftKey || e.altKey) return;
  const a = (e.target as Element | null)?.closest?.('a');
  if (!a || a.target || a.hasAttribute('download')) return;
  const href = a.getAttribute('href');
  if (!href || href.startsWith('#') || /^[a-z]+:/i.test(href)) return;
  const url = new URL(href, window.location.href);
  if (url.origin !== window.location.origin) return;
  if (/^\/(api|docker|gateway|assets)\//.test(url.pathname)) return; // server resources (downloads)
  e.preventDefault();
  navigate(url.pathname + url.search);
}
