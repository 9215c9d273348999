/**
 * The gate's own answers on an app host: the redirect to the hub's sign-in, 401 for a client
 * that is not a browser (or a WebSocket), 403 naming the route and the role it needs, and the
 * refusal of a bad sign-in code. Browsers (Accept: text/html) get a small page, others one line.
 * Everything interpolated is escaped; none of it echoes a cookie or a code.
 */
import type { IncomingMessage } from 'node:http';
import type { Http2ServerRequest } from 'node:http2';
import type { EdgeAdmission } from '../edge-access-gate.ts';

type Req = IncomingMessage | Http2ServerRequest;
type Refusal = Extract<EdgeAdmission, { pass: false }>;

function escapeHtml(text: string): string {
  return text.replace(/[&<>"']/g, (c) => `&#${c.charCodeAt(0)};`);
}

export function wantsHtml(req: Req): boolean {
  const accept = req.headers.accept;
  return /\btext\/html\b/i.test(Array.isArray(accept) ? accept.join(',') : (accept ?? ''));
}

/** A WebSocket: an HTTP/1.1 Upgrade, or HTTP/2's extended CONNECT. */
export function isUpgrade(req: Req): boolean {
  return req.headers.upgrade !== undefined || req.method === 'CONNECT';
}

function page(req: Req, status: number, title: string, detail: string, link: { href: string; text: string } | null, extra: Record<string, string> = {}): Refusal {
  const headers = { 'cache-control': 'no-store', ...extra };
  if (!wantsHtml(req) || isUpgrade(req)) {
    return { pass: false, status, headers: { ...headers, 'content-type': 'text/plain; charset=utf-8' }, body: `${title}: ${detail}\n` };
  }
  const more = link ? `\n<p><a href="${escapeHtml(link.href)}">${escapeHtml(link.text)}</a></p>` : '';
  const body =
    `<!doctype html>\n<html><head><meta charset="utf-8"><title>${status} ${escapeHtml(title)}</title></head>\n` +
    `<body><h1>${escapeHtml(title)}</h1>\n<p>${escapeHtml(detail)}</p>${more}\n<p><small>dockfleet edge</small></p></body></html>\n`;
  return { pass: false, status, headers: { ...headers, 'content-type': 'text/html; charset=utf-8' }, body };
}

export function routeName(route: { host: string; path: string }): string {
  return `${route.host}${route.path === '/' ? '' : route.path}`;
}

/** A browser's navigation without a session: to the hub's hand-off page, which signs in first if need be. */
export function toHubSignIn(handOffUrl: string, extra: Record<string, string>): Refusal {
  return { pass: false, status: 302, headers: { location: handOffUrl, 'cache-control': 'no-store', ...extra }, body: '' };
}

export function signInNeeded(req: Req, route: { host: string; path: string }, extra: Record<string, string>): Refusal {
  return page(req, 401, 'Sign-in needed', `${routeName(route)} is for signed-in dockfleet users; open it in a browser to sign in at the hub.`, null, extra);
}

export function roleNeeded(req: Req, route: { host: string; path: string; access: string }, user: { name: string; role: string }): Refusal {
  return page(
    req,
    403,
    `${routeName(route)} needs the ${route.access} role`,
    `You are signed in as ${user.name}, who has the ${user.role} role. Ask an admin of the hub for ${route.access} or higher.`,
    null,
  );
}

export function unknownAccess(req: Req, route: { host: string; path: string; access: string }): Refusal {
  return page(req, 403, `${routeName(route)} cannot be opened`, `Its access label "${route.access}" is not one the edge knows.`, null);
}

export function codeRefused(req: Req, route: { host: string; path: string }, extra: Record<string, string>): Refusal {
  return page(
    req,
    400,
    'This sign-in link cannot be used',
    'It was used already, is too old, belongs to another host, or its hub sign-in has ended. Open the app again to sign in.',
    { href: route.path, text: `Open ${routeName(route)}` },
    extra,
  );
}
