/**
 * HTTP/2 cleartext to apps (`h2c` routes; gRPC): one HTTP/2 session per target over one dial
 * stream, every request a stream of it, so a gRPC client's many calls cost one connection to the
 * container. A session that dies (the app hung up, sent GOAWAY, the node went away) is dropped
 * and the next request makes a new one; a session with nothing in flight for `idleMs` is closed.
 */
import http2, { type ClientHttp2Session } from 'node:http2';
import type { Duplex } from 'node:stream';
import { backendKey, type BackendTarget, type PoolLimits } from './backend-target.ts';
import { dialContainer, type LinkSource } from './dial.ts';

/** Per-stream and per-session receive windows toward apps: a download is not capped at 64 KiB per round trip. */
const STREAM_WINDOW = 1024 * 1024;
const SESSION_WINDOW = 16 * 1024 * 1024;

export class H2cSessions {
  readonly #links: LinkSource;
  readonly #limits: PoolLimits;
  readonly #sessions = new Map<string, Promise<ClientHttp2Session>>();
  /** Sessions made (for tests and stats). */
  dials = 0;

  constructor(links: LinkSource, limits: PoolLimits) {
    this.#links = links;
    this.#limits = limits;
  }

  /** The live session to the target, made (one dial) if there is none. */
  session(target: BackendTarget): Promise<ClientHttp2Session> {
    const key = backendKey(target);
    const known = this.#sessions.get(key);
    if (known) return known;
    const made = this.#connect(key, target);
    this.#sessions.set(key, made);
    made.catch(() => {
      if (this.#sessions.get(key) === made) this.#sessions.delete(key);
    });
    return made;
  }

  /** Closes the sessions to one container (it stopped, or its node went away). */
  forget(containerId: string): void {
    for (const [key, made] of this.#sessions) {
      if (key.split('|')[1] !== containerId) continue;
      this.#sessions.delete(key);
      made.then(
        (s) => s.destroy(),
        () => {},
      );
    }
  }

  close(): void {
    for (const made of this.#sessions.values())
      made.then(
        (s) => s.destroy(),
        () => {},
      );
    this.#sessions.clear();
  }

  async #connect(key: string, target: BackendTarget): Promise<ClientHttp2Session> {
    this.dials++;
    const stream = await dialContainer(this.#links, target);
    const session = http2.connect(`http://${target.serverName}`, {
      createConnection: () => stream as unknown as Duplex as never,
      settings: { enablePush: false, initialWindowSize: STREAM_WINDOW },
    });
    const made = this.#sessions.get(key);
    const drop = (): void => {
      if (this.#sessions.get(key) === made) this.#sessions.delete(key);
    };
    session.on('error', drop);
    session.once('goaway', drop);
    session.once('close', () => {
      drop();
      if (!stream.destroyed) stream.destroy();
    });
    session.setTimeout(this.#limits.idleMs, () => {
      // Quiet for idleMs: no new streams from now on; streams still open finish first.
      drop();
      session.close();
    });
    await new Promise<void>((resolve, reject) => {
      session.once('connect', () => {
        session.setLocalWindowSize(SESSION_WINDOW);
        resolve();
      });
      session.once('error', reject);
      session.once('close', () => reject(new Error('the app closed the h2c connection')));
    });
    return session;
  }
}
