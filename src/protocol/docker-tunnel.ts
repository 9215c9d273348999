/**
 * How a Docker Engine API call travels inside the channel. The hub sends it on its own HTTP/2
 * stream with the engine path under DOCKER_PREFIX, headers as the client sent them minus
 * hop-by-hop ones. A hijacked call (attach, exec start: `Upgrade: tcp`) is marked with
 * UPGRADE_HEADER; the agent answers 200 with UPGRADED_HEADER once the engine has switched
 * protocols, and from then on the stream carries raw bytes both ways (HTTP/2 streams are full
 * duplex, so half-close — stdin EOF while output continues — maps to END_STREAM).
 */
export const DOCKER_PREFIX = '/docker';
export const UPGRADE_HEADER = 'x-dockfleet-upgrade';
export const UPGRADED_HEADER = 'x-dockfleet-upgraded';
/** On an upgrade stream: how many leading bytes are the request body. HTTP/2 enforces
 * content-length against the whole stream, which here goes on with raw bytes after the body. */
export const BODY_LENGTH_HEADER = 'x-dockfleet-body-length';
/** Set by the agent on a refusal by its local policy, so the hub can count and audit them. */
export const POLICY_REFUSAL_HEADER = 'x-dockfleet-policy';

/** Headers that describe one HTTP/1.1 connection and never cross a proxy (RFC 9110 §7.6.1),
 * plus those HTTP/2 forbids. */
export const HOP_BY_HOP = new Set([
  'connection',
  'keep-alive',
  'proxy-connection',
  'proxy-authenticate',
  'proxy-authorization',
  'te',
  'trailer',
  'transfer-encoding',
  'upgrade',
  'host',
  'http2-settings',
]);

/** Copies headers without hop-by-hop ones, pseudo-headers, or any name in `drop`. */
export function forwardableHeaders(headers: Record<string, string | string[] | undefined>, drop: ReadonlySet<string> = new Set()): Record<string, string | string[]> {
  const out: Record<string, string | string[]> = {};
  const connectionTokens = new Set(
    String(headers.connection ?? '')
      .toLowerCase()
      .split(',')
      .map((t) => t.trim())
      .filter(Boolean),
  );
  for (const [name, value] of Object.entries(headers)) {
    const lower = name.toLowerCase();
    if (value === undefined || lower.startsWith(':') || HOP_BY_HOP.has(lower) || connectionTokens.has(lower) || drop.has(lower)) continue;
    out[lower] = value;
  }
  return out;
}

/** Every header whose name starts with this is the hub's and the agent's own (body length,
 * upgrade marks, policy verdicts, the UI's CSRF mark): a client never gets to send one on. */
export const INTERNAL_HEADER_PREFIX = 'x-dockfleet-';

/** A client's request headers as they may travel to an agent: forwardable, minus `drop`,
 * minus every internal header, whatever the client put there. */
export function clientRequestHeaders(headers: Record<string, string | string[] | undefined>, drop: ReadonlySet<string> = new Set()): Record<string, string | string[]> {
  const out = forwardableHeaders(headers, drop);
  for (const name of Object.keys(out)) if (name.startsWith(INTERNAL_HEADER_PREFIX)) delete out[name];
  return out;
}

/** Docker's error body: the CLI prints `Error response from daemon: <message>`. */
export function dockerErrorBody(message: string): string {
  return `${JSON.stringify({ message })}\n`;
}
