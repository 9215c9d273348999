/**
 * Ingress: the container label grammar (CONTRACT.md "Ingress") and the route view that
 * `GET /api/v1/routes` and `dockfleet routes --json` return.
 *
 * Labels: `dockfleet.ingress.host`, `.port`, `.path`, `.protocol`, `.access`, `.idle-timeout`
 * (seconds a request or response may stop flowing; default 60, 1..86400), and the indexed
 * forms `dockfleet.ingress.N.host` … (N a decimal index without leading zeros) for several
 * routes on one container. The unindexed set and each index are one route each.
 */
import { z } from 'zod';

export const INGRESS_PREFIX = 'dockfleet.ingress.';
export const INGRESS_KEYS = ['host', 'port', 'path', 'protocol', 'access', 'idle-timeout'] as const;
export type IngressKey = (typeof INGRESS_KEYS)[number];

export const INGRESS_PROTOCOLS = ['http', 'h2c', 'https'] as const;
export type IngressProtocol = (typeof INGRESS_PROTOCOLS)[number];

/** RFC 1123 host name, lowercase, at least two labels would be too strict for tests: one or more. */
export const HOSTNAME = /^(?=.{1,253}$)[a-z0-9](?:[a-z0-9-]{0,61}[a-z0-9])?(?:\.[a-z0-9](?:[a-z0-9-]{0,61}[a-z0-9])?)*$/;
/** `public`, `users`, or a role name. */
export const ACCESS = /^[a-z][a-z0-9_-]{0,62}$/;
/** `.idle-timeout`: seconds a request or response may stop flowing before the edge ends it. */
export const IDLE_TIMEOUT_MIN_S = 1;
export const IDLE_TIMEOUT_MAX_S = 86_400;
/** The largest index accepted in `dockfleet.ingress.N.*` (keeps one container's routes bounded). */
export const MAX_ROUTE_INDEX = 99;

export const routeTlsView = z.object({
  state: z.enum(['none', 'pending', 'valid', 'expiring', 'failed', 'supplied']),
  notAfter: z.string().nullable(),
  /** Why the last ACME order for the host failed (`failed`); null otherwise. Never secret. */
  error: z.string().nullable(),
});

export const routeView = z.object({
  host: z.string(),
  path: z.string(),
  node: z.string(),
  container: z.string(),
  port: z.number().int().nullable(),
  access: z.string(),
  protocol: z.enum(INGRESS_PROTOCOLS),
  running: z.boolean(),
  nodeOnline: z.boolean(),
  tls: routeTlsView,
  /** Why this claim is not served (a label mistake or a conflict); null when it is served. */
  error: z.string().nullable(),
});
export type RouteView = z.infer<typeof routeView>;
export const routeViews = z.array(routeView);

/** `POST /api/v1/certificates`: a certificate chain (leaf first) and its unencrypted private key, PEM. */
export const addCertificateBody = z
  .object({
    certPem: z.string().min(1).max(60_000),
    keyPem: z.string().min(1).max(20_000),
  })
  .strict();

/** One edge certificate as `GET /api/v1/certificates` and `dockfleet certs ls --json` show it: never its key. */
export const certificateView = z.object({
  id: z.string(),
  source: z.enum(['supplied', 'acme']),
  names: z.array(z.string()),
  notBefore: z.string(),
  notAfter: z.string(),
  /** SHA-256 of the leaf, colon-separated hex. */
  fingerprint: z.string(),
  issuer: z.string(),
  /** The host an ACME certificate was ordered for; null for a supplied one. */
  acmeHost: z.string().nullable(),
  createdAt: z.string(),
});
export type CertificateView = z.infer<typeof certificateView>;

/**
 * The container ports a container's own ingress labels publish — the only ports an agent lets the
 * edge connect to (judged from the engine's inspect, never from the hub's word): every valid
 * `.port` value, and, for a route that names no port, the container's exposed TCP port when it
 * has exactly one (the hub's rule for a missing `.port`).
 */
export function labelledIngressPorts(labels: Readonly<Record<string, string>>, exposedTcp: readonly number[]): number[] {
  const ports = new Set<number>();
  const groups = new Map<string, { host: boolean; port: boolean }>();
  for (const [key, value] of Object.entries(labels)) {
    if (!key.startsWith(INGRESS_PREFIX)) continue;
    const match = /^(?:(0|[1-9][0-9]*)\.)?(host|port)$/.exec(key.slice(INGRESS_PREFIX.length));
    if (!match) continue;
    const index = match[1] ?? '';
    const group = groups.get(index) ?? { host: false, port: false };
    groups.set(index, group);
    if (match[2] === 'host') group.host = true;
    else {
      group.port = true;
      if (/^[1-9][0-9]{0,4}$/.test(value) && Number(value) <= 65_535) ports.add(Number(value));
    }
  }
  const onlyExposed = exposedTcp.length === 1 ? exposedTcp[0] : undefined;
  if (onlyExposed !== undefined && [...groups.values()].some((g) => g.host && !g.port)) ports.add(onlyExposed);
  return [...ports].sort((a, b) => a - b);
}
