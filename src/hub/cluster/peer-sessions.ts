/**
 * A replica's HTTP/2 sessions to its peers (issue 17): one per peer URL, dialled on first use
 * with this replica's peer certificate, trusted only if the peer's certificate is a replica's
 * from the same CA, and dialled again after it closes.
 */
import http2, { type ClientHttp2Session } from 'node:http2';
import type { PeerCertificate } from 'node:tls';
import { H2_MAX_SESSION_MEMORY_MB, H2_SETTINGS, widenSessionWindow } from '../../lib/h2-channel.ts';
import { isReplicaCertificate } from '../pki.ts';

export class PeerSessions {
  readonly #tls: { key: string; cert: string; ca: string };
  readonly #sessions = new Map<string, ClientHttp2Session>();

  constructor(tls: { key: string; cert: string; ca: string }) {
    this.#tls = tls;
  }

  /** The session to the peer at `url` (https://host:port), open or opening. */
  session(url: string): ClientHttp2Session {
    const known = this.#sessions.get(url);
    if (known && !known.closed && !known.destroyed) return known;
    const session = http2.connect(url, {
      key: this.#tls.key,
      cert: this.#tls.cert,
      ca: this.#tls.ca,
      settings: H2_SETTINGS,
      maxSessionMemory: H2_MAX_SESSION_MEMORY_MB,
      // The CA is the fleet's own; a replica is known by its certificate's name, not by a host name.
      checkServerIdentity: (_host: string, cert: PeerCertificate) => (isReplicaCertificate(cert) ? undefined : new Error(`the peer at ${url} is not a dockfleet replica`)),
    });
    session.on('error', () => {}); // surfaces on the streams that were using it
    session.once('connect', (s) => widenSessionWindow(s as ClientHttp2Session));
    session.once('close', () => {
      if (this.#sessions.get(url) === session) this.#sessions.delete(url);
    });
    this.#sessions.set(url, session);
    return session;
  }

  /** Closes every session: at once, or letting streams in flight end within `graceMs`. */
  close(graceMs = 0): void {
    const sessions = [...this.#sessions.values()];
    this.#sessions.clear();
    for (const s of sessions) {
      if (graceMs <= 0) {
        s.destroy();
        continue;
      }
      s.close();
      setTimeout(() => s.destroy(), graceMs).unref();
    }
  }
}
