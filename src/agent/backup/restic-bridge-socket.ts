/**
 * The agent's unix socket for restic bridges, `<state>/restic.sock` (0600; the state dir is the
 * agent's own). Each connection is one restic process: its hello names the repository, the agent
 * answers a stream the hub parked (reverse-parking.ts) with that name, says ok, and from then on
 * passes bytes both ways untouched — restic's HTTP/2 connection ends at the hub's repository
 * server, so this process neither parses nor sees anything but ciphertext in frames.
 */
import { chmod, rm } from 'node:fs/promises';
import net from 'node:net';
import type { Http2ServerRequest, Http2Stream } from 'node:http2';
import { cancelUnlessDone } from '../../lib/h2-channel.ts';
import type { Logger } from '../../lib/logger.ts';
import { BRIDGE_LINE_MAX, RESTIC_REPO_HEADER, parseBridgeHello, type BridgeAnswer } from '../../protocol/restic-reverse.ts';
import type { TunnelHandler } from '../tunnel-handler.ts';
import { resticSocketPath } from './hub-repo.ts';
import { ReverseParking } from './reverse-parking.ts';

const HELLO_TIMEOUT_MS = 10_000;
/** restic itself gives its program a minute to answer; a link coming back within this is waited for. */
const PARKED_WAIT_MS = 45_000;

export interface ResticBridgeSocket {
  /** The channel's tunnel handler, with the hub's parked streams taken out of it. */
  wrap(handler: TunnelHandler): TunnelHandler;
  close(): Promise<void>;
}

export async function listenResticBridge(stateDir: string, log: Logger): Promise<ResticBridgeSocket> {
  const path = resticSocketPath(stateDir);
  const parking = new ReverseParking();
  const connections = new Set<net.Socket>();
  const server = net.createServer((conn) => {
    connections.add(conn);
    conn.once('close', () => connections.delete(conn));
    void serveBridge(conn, parking, log);
  });
  try {
    // A socket left by an agent that died is in the way; nothing else lives at this path.
    await rm(path, { force: true });
    await new Promise<void>((resolve, reject) => {
      server.once('error', reject);
      server.listen(path, () => resolve());
    });
    await chmod(path, 0o600);
  } catch (err) {
    // Backups to the hub need it; the rest of the agent does not (a state dir whose path is too
    // long for a unix socket, say), so the agent runs on and restic's bridge says why it cannot.
    log.warn({ err, path }, 'no restic bridge socket: backups to the hub repository will fail on this host');
    server.close();
    return { wrap: (handler) => parking.wrap(handler), close: async () => parking.close() };
  }
  return {
    wrap: (handler) => parking.wrap(handler),
    async close() {
      parking.close();
      for (const conn of connections) conn.destroy();
      await new Promise<void>((resolve) => server.close(() => resolve()));
      await rm(path, { force: true });
    },
  };
}

function say(conn: net.Socket, answer: BridgeAnswer): void {
  conn.write(`${JSON.stringify(answer)}\n`);
}

/** The hello line and whatever came after it, or null (too long, closed, timed out). */
function readHello(conn: net.Socket): Promise<{ line: string; rest: Buffer } | null> {
  return new Promise((resolve) => {
    let got = Buffer.alloc(0);
    const done = (value: { line: string; rest: Buffer } | null): void => {
      clearTimeout(timer);
      conn.off('data', onData);
      conn.off('close', onClose);
      conn.pause();
      resolve(value);
    };
    const onData = (chunk: Buffer): void => {
      got = Buffer.concat([got, chunk]);
      const end = got.indexOf(0x0a);
      if (end >= 0) return done({ line: got.subarray(0, end).toString('utf8'), rest: got.subarray(end + 1) });
      if (got.length > BRIDGE_LINE_MAX) done(null);
    };
    const onClose = (): void => done(null);
    const timer = setTimeout(() => done(null), HELLO_TIMEOUT_MS);
    conn.on('data', onData);
    conn.once('close', onClose);
  });
}

async function serveBridge(conn: net.Socket, parking: ReverseParking, log: Logger): Promise<void> {
  conn.on('error', (err) => log.debug({ err }, 'restic bridge connection error'));
  const hello = await readHello(conn);
  const parsed = hello ? parseBridgeHello(hello.line) : null;
  if (!hello || !parsed) {
    if (!conn.destroyed) say(conn, { ok: false, message: 'malformed hello: expected {"repo": NAME} with a valid repository name' });
    conn.end();
    return;
  }
  let parked;
  try {
    parked = await parking.take(PARKED_WAIT_MS);
  } catch (err) {
    say(conn, { ok: false, message: (err as Error).message });
    conn.end();
    return;
  }
  const { req, res } = parked;
  if (conn.destroyed) {
    parking.putBack(parked); // The bridge gave up meanwhile; the next one may use it.
    return;
  }
  res.writeHead(200, { [RESTIC_REPO_HEADER]: parsed.repo });
  say(conn, { ok: true });
  if (hello.rest.length > 0) res.stream.write(hello.rest);
  log.debug({ repo: parsed.repo }, 'restic connected through the bridge');
  passBytes(req, conn, res.stream);
  conn.resume();
}

/**
 * Bytes both ways, each end a half-close, as the edge's dialer does: the hub's through the
 * request, restic's into the answer. The HTTP/2 stream is never destroyed here, only ended and
 * then cancelled (h2-channel.ts says why); a stream that closes early takes the bridge down.
 */
function passBytes(req: Http2ServerRequest, conn: net.Socket, stream: Http2Stream): void {
  req.pipe(conn);
  conn.pipe(stream);
  conn.once('close', () => {
    req.unpipe(conn);
    conn.unpipe(stream);
    if (!stream.writableEnded) stream.end();
    if (stream.writableFinished) cancelUnlessDone(stream);
    else stream.once('finish', () => cancelUnlessDone(stream));
  });
  stream.once('close', () => {
    conn.unpipe(stream);
    if (!(stream.readableEnded && stream.writableFinished)) conn.destroy();
  });
}
