/**
 * Where a hand-off may send a browser: an app host as the browser named it (`app.example.com`,
 * or `app.example.com:PORT` with the edge's own port), and a return path on that host. Both come
 * from a URL anyone can craft, so nothing but a plain path on a route's host passes: no scheme,
 * no `//host`, no backslash (browsers read `/\evil` as `//evil`), no control characters.
 */
import { HOSTNAME } from '../../../protocol/ingress.ts';
import { DockfleetError } from '../../../protocol/errors.ts';

/** The app host's callback, under the route's own prefix so it is matched as that route. */
export const CALLBACK_SEGMENT = '/.dockfleet/auth';
const MAX_RETURN = 2048;

export function callbackPath(routePath: string): string {
  return `${routePath === '/' ? '' : routePath}${CALLBACK_SEGMENT}`;
}

export interface AppAuthority {
  /** Lowercase host name, as routes are keyed. */
  host: string;
  /** `host` or `host:port`, for the callback URL. */
  authority: string;
}

/** `edgePort`: the port the edge listens on; a named port must be it (none: the default 443). */
export function parseAppAuthority(raw: string, edgePort: number | null): AppAuthority {
  const m = /^([^:]+)(?::([0-9]{1,5}))?$/.exec(raw.trim().toLowerCase());
  const host = m?.[1]?.replace(/\.$/, '') ?? '';
  if (!m || !HOSTNAME.test(host)) throw new DockfleetError('validation_failed', 'host: not an app host name');
  const port = m[2] === undefined ? null : Number(m[2]);
  if (port !== null && port !== 443 && port !== edgePort) {
    throw new DockfleetError('validation_failed', `host: port ${port} is not this hub's edge port`);
  }
  return { host, authority: port === null || port === 443 ? host : `${host}:${port}` };
}

/** The return path as given, when it is a plain path on the app host; else validation_failed. */
export function checkReturnPath(path: string): { path: string; pathname: string } {
  const bad = (why: string): never => {
    throw new DockfleetError('validation_failed', `return: ${why}`);
  };
  if (path.length === 0 || path.length > MAX_RETURN) bad(`must be 1 to ${MAX_RETURN} characters`);
  if (!path.startsWith('/') || path.startsWith('//')) bad('must be a path on the app host (starting with a single /)');
  if (/[\\\u0000-\u0020\u007f]/.test(path)) bad('has a backslash, a space or a control character');
  const url = new URL(path, 'https://app.invalid');
  if (url.origin !== 'https://app.invalid') bad('leaves the app host');
  return { path, pathname: url.pathname };
}
