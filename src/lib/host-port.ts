/** Parses "HOST:PORT" (IPv6 as "[::1]:PORT"); throws a one-line error for anything else. */
export function parseHostPort(value: string, flag: string): { host: string; port: number } {
  const m = /^(?:\[([0-9a-fA-F:.]+)\]|([^:[\]]+)):(\d{1,5})$/.exec(value);
  const port = m ? Number(m[3]) : NaN;
  if (!m || port > 65535) throw new Error(`${flag} must be HOST:PORT (e.g. 127.0.0.1:7443), got "${value}"`);
  return { host: (m[1] ?? m[2])!, port };
}

/** Formats host and port for a URL, bracketing IPv6 literals. */
export function urlHost(host: string, port: number): string {
  return host.includes(':') ? `[${host}]:${port}` : `${host}:${port}`;
}
