/**
 * Reads the server name (SNI) and the ALPN protocols a TLS client offers from the first bytes
 * of a connection, before any TLS library sees them: the edge must know whether a client asks
 * for `acme-tls/1` (RFC 8737) before it picks the certificate, and Node's SNICallback cannot see
 * ALPN. Small, strict and bounded: it reads TLS handshake records (RFC 8446 5.1, also TLS 1.0 to
 * 1.2's), reassembles one ClientHello of at most MAX_CLIENT_HELLO bytes from one or more
 * records, checks every length against its container, and answers `more` (not enough bytes
 * yet), `hello`, or `malformed` with the reason. It never throws and never reads past a
 * declared length.
 */

/** The largest ClientHello accepted (browsers send under 2 KiB; post-quantum key shares about 1.8 KiB). */
export const MAX_CLIENT_HELLO = 16 * 1024;
const RECORD_HEADER = 5;
const MAX_RECORD = 16 * 1024;
const HANDSHAKE = 22;
const CLIENT_HELLO = 1;
const EXT_SERVER_NAME = 0;
const EXT_ALPN = 16;

export type HelloReading = { kind: 'more' } | { kind: 'hello'; serverName: string | null; alpn: string[] } | { kind: 'malformed'; reason: string };

const MORE: HelloReading = Object.freeze({ kind: 'more' });
const malformed = (reason: string): HelloReading => ({ kind: 'malformed', reason });

/** Reads BYTES, everything received so far on a connection. */
export function readClientHello(bytes: Buffer): HelloReading {
  // Reassemble the handshake layer from as many records as it takes.
  const parts: Buffer[] = [];
  let have = 0;
  let offset = 0;
  let needed = -1; // the ClientHello's whole length (header included), once its header is in
  while (needed < 0 || have < needed) {
    if (bytes.length - offset < RECORD_HEADER) return offset === 0 && bytes.length > 0 ? firstBytes(bytes) : MORE;
    if (bytes[offset] !== HANDSHAKE) return malformed(offset === 0 ? 'not a TLS handshake record' : 'a non-handshake record inside the ClientHello');
    if (bytes[offset + 1] !== 3 || bytes[offset + 2]! > 4) return malformed('unknown record version');
    const length = bytes.readUInt16BE(offset + 3);
    if (length === 0 || length > MAX_RECORD) return malformed('bad record length');
    if (bytes.length - offset - RECORD_HEADER < length) return MORE;
    const fragment = bytes.subarray(offset + RECORD_HEADER, offset + RECORD_HEADER + length);
    parts.push(fragment);
    have += length;
    offset += RECORD_HEADER + length;
    if (needed < 0 && have >= 4) {
      const head = parts.length === 1 ? parts[0]! : Buffer.concat(parts);
      if (head[0] !== CLIENT_HELLO) return malformed('the first handshake message is not a ClientHello');
      needed = 4 + head.readUIntBE(1, 3);
      if (needed > MAX_CLIENT_HELLO) return malformed('the ClientHello is too large');
    }
  }
  // Bytes beyond the ClientHello in its last record would be another handshake message: not allowed before ServerHello.
  if (have !== needed) return malformed('bytes after the ClientHello in its record');
  const message = parts.length === 1 ? parts[0]! : Buffer.concat(parts);
  return parseBody(message.subarray(4));
}

/** A partial first record: say early when it cannot be TLS at all. */
function firstBytes(bytes: Buffer): HelloReading {
  if (bytes[0] !== HANDSHAKE) return malformed('not a TLS handshake record');
  if (bytes.length >= 2 && bytes[1] !== 3) return malformed('unknown record version');
  return MORE;
}

/** A cursor over one length-checked span. */
class Reader {
  readonly #buf: Buffer;
  #at = 0;
  constructor(buf: Buffer) {
    this.#buf = buf;
  }
  get left(): number {
    return this.#buf.length - this.#at;
  }
  u8(): number | null {
    return this.left >= 1 ? this.#buf[this.#at++]! : null;
  }
  u16(): number | null {
    if (this.left < 2) return null;
    const v = this.#buf.readUInt16BE(this.#at);
    this.#at += 2;
    return v;
  }
  bytes(n: number): Buffer | null {
    if (this.left < n) return null;
    const b = this.#buf.subarray(this.#at, this.#at + n);
    this.#at += n;
    return b;
  }
  /** A sub-span whose length comes first (1 or 2 bytes). */
  vector(lengthBytes: 1 | 2): Reader | null {
    const n = lengthBytes === 1 ? this.u8() : this.u16();
    if (n === null) return null;
    const b = this.bytes(n);
    return b === null ? null : new Reader(b);
  }
}

function parseBody(body: Buffer): HelloReading {
  const r = new Reader(body);
  const version = r.u16();
  if (version === null || version >> 8 !== 3) return malformed('bad ClientHello version');
  if (r.bytes(32) === null) return malformed('short random');
  const session = r.vector(1);
  if (session === null || session.left > 32) return malformed('bad session id');
  const suites = r.vector(2);
  if (suites === null || suites.left < 2 || suites.left % 2 !== 0) return malformed('bad cipher suites');
  const compression = r.vector(1);
  if (compression === null || compression.left < 1) return malformed('bad compression methods');
  if (r.left === 0) return { kind: 'hello', serverName: null, alpn: [] }; // no extensions at all
  const extensions = r.vector(2);
  if (extensions === null || r.left !== 0) return malformed('bad extensions length');
  let serverName: string | null = null;
  let alpn: string[] = [];
  const seen = new Set<number>();
  while (extensions.left > 0) {
    const type = extensions.u16();
    const data = extensions.vector(2);
    if (type === null || data === null) return malformed('bad extension');
    if (seen.has(type)) return malformed(`extension ${type} twice`);
    seen.add(type);
    if (type === EXT_SERVER_NAME) {
      const name = readServerName(data);
      if (typeof name !== 'string') return name;
      serverName = name;
    } else if (type === EXT_ALPN) {
      const protocols = readAlpn(data);
      if (!Array.isArray(protocols)) return protocols;
      alpn = protocols;
    }
  }
  return { kind: 'hello', serverName, alpn };
}

/** RFC 6066 3: one host_name entry (the only type defined), ASCII, at most 255 bytes. */
function readServerName(data: Reader): string | HelloReading {
  const list = data.vector(2);
  if (list === null || data.left !== 0 || list.left === 0) return malformed('bad server_name list');
  let name: string | null = null;
  while (list.left > 0) {
    const type = list.u8();
    const value = list.vector(2);
    if (type === null || value === null) return malformed('bad server_name entry');
    if (type !== 0) continue;
    if (name !== null) return malformed('two host names');
    const raw = value.bytes(value.left)!;
    if (raw.length === 0 || raw.length > 255 || raw.some((b) => b <= 0x20 || b >= 0x7f)) return malformed('bad host name');
    name = raw.toString('latin1').toLowerCase();
  }
  return name ?? malformed('no host name in server_name');
}

/** RFC 7301 3.1: a non-empty list of non-empty protocol names. */
function readAlpn(data: Reader): string[] | HelloReading {
  const list = data.vector(2);
  if (list === null || data.left !== 0 || list.left === 0) return malformed('bad ALPN list');
  const protocols: string[] = [];
  while (list.left > 0) {
    const name = list.vector(1);
    if (name === null || name.left === 0) return malformed('bad ALPN protocol name');
    protocols.push(name.bytes(name.left)!.toString('latin1'));
  }
  return protocols;
}
