/**
 * Keeps a certificate from ACME on every host the edge serves: watches the route table (hosts
 * of routes served without an error), skips hosts a supplied certificate covers, and orders for
 * a host that has no ACME certificate or whose certificate has less than a third of its lifetime
 * left — one order per host at a time, a few at once. A stored certificate that is still good is
 * used as it is, so a restarted hub orders nothing.
 *
 * A failed order is recorded on the host (`failed` with the ACME server's reason or the network
 * error) and retried with a doubling, capped delay; the certificate the host had is served until
 * a new one is stored. Checks run at start, on every route change, and on an unref'd timer.
 *
 * Given `leases` (hub replicas, issue 17), orders are placed only while this replica holds the
 * lease `acme-renewals`, so the replicas do not each order the same host from the CA; another
 * replica takes over when the holder dies. Not wired in yet: the certificate book is loaded once
 * at start, so the others would not serve what the holder stores until they restart.
 */
import { isIP } from 'node:net';
import type { Logger } from '../../../lib/logger.ts';
import type { Leases } from '../../cluster/lease.ts';
import type { RouteView } from '../../../protocol/ingress.ts';
import type { EdgeCertificateBook } from '../certs/certificate-book.ts';
import type { ChallengeBoard } from '../certs/challenge-board.ts';
import type { AcmeClient } from './acme-client.ts';
import { asAcmeFailure } from './acme-failure.ts';
import { obtainCertificate, type ChallengeType } from './acme-order.ts';
import { needsOrder, retryDelayMs, tuningFrom, type AcmeTuning } from './acme-schedule.ts';

/** What the manager needs of the route table. */
export interface RouteSource {
  list(): RouteView[];
  on(event: 'changed', listener: () => void): unknown;
  off(event: 'changed', listener: () => void): unknown;
}

export interface AcmeManagerOptions {
  routes: RouteSource;
  book: EdgeCertificateBook;
  client: AcmeClient;
  board: ChallengeBoard;
  challenge: ChallengeType;
  log: Logger;
  tuning?: Partial<AcmeTuning>;
  /** Who orders when replicas share the store: the holder of `acme-renewals` (default: this hub, always). */
  leases?: Leases;
}

/** The lease whose holder places the cluster's ACME orders. */
export const ACME_LEASE = 'acme-renewals';

interface HostState {
  failures: number;
  /** No new order before this time (after a failure). */
  retryAt: number;
  retryTimer: NodeJS.Timeout | null;
}

export class AcmeManager {
  readonly #opts: AcmeManagerOptions;
  #tuning: AcmeTuning;
  readonly #hosts = new Map<string, HostState>();
  readonly #running = new Map<string, Promise<void>>();
  readonly #queue: string[] = [];
  readonly #abort = new AbortController();
  #timer: NodeJS.Timeout | null = null;
  #checkQueued = false;
  #closed = false;
  #ordersPlaced = 0;
  /** While this replica holds the lease (with `leases` only); aborted when it no longer does. */
  #held: AbortSignal | null = null;
  #following: { stop(): void } | null = null;
  readonly #onRoutes = (): void => this.#queueCheck();

  constructor(opts: AcmeManagerOptions) {
    this.#opts = opts;
    this.#tuning = tuningFrom(opts.tuning);
  }

  /** The challenge this hub answers: HTTP-01 when it has --edge-http, else TLS-ALPN-01. */
  get challenge(): ChallengeType {
    return this.#opts.challenge;
  }

  /** Orders placed by this process (a restarted hub starts from 0 and, with good certificates stored, stays there). */
  get ordersPlaced(): number {
    return this.#ordersPlaced;
  }

  start(): void {
    this.#opts.routes.on('changed', this.#onRoutes);
    this.#timer = setInterval(() => this.#queueCheck(), this.#tuning.checkEveryMs);
    this.#timer.unref();
    const { leases } = this.#opts;
    if (leases) this.#following = leases.follow(ACME_LEASE, (held) => this.#orderWhile(held));
    else this.#queueCheck();
  }

  /** Orders what is due while `held` lasts (this replica holds the lease) or until close. */
  async #orderWhile(held: AbortSignal): Promise<void> {
    if (this.#closed || held.aborted) return;
    this.#held = held;
    this.#opts.log.info('acme: ordering certificates from this replica');
    this.#queueCheck();
    await new Promise<void>((resolve) => {
      held.addEventListener('abort', () => resolve(), { once: true });
      this.#abort.signal.addEventListener('abort', () => resolve(), { once: true });
    });
    if (this.#held === held) this.#held = null;
    this.#queue.length = 0; // orders in flight finish; nothing new starts here
  }

  /** Whether this replica may place orders now. */
  #mayOrder(): boolean {
    if (this.#closed) return false;
    return this.#opts.leases === undefined || (this.#held !== null && !this.#held.aborted);
  }

  /** Orders running or waiting for a turn now. */
  get ordersInFlight(): number {
    return this.#running.size + this.#queue.length;
  }

  /** Changes when certificates are renewed (tests lower it to renew early) and checks at once. */
  setRenewFraction(renewFraction: number): void {
    this.#tuning = tuningFrom({ ...this.#tuning, renewFraction });
    this.#queueCheck();
  }

  /** Stops checking, abandons orders in flight (nothing half-done is stored) and waits for them. */
  async close(): Promise<void> {
    this.#closed = true;
    this.#following?.stop();
    this.#opts.routes.off('changed', this.#onRoutes);
    if (this.#timer) clearInterval(this.#timer);
    for (const state of this.#hosts.values()) if (state.retryTimer) clearTimeout(state.retryTimer);
    this.#queue.length = 0;
    this.#abort.abort();
    await Promise.allSettled(this.#running.values());
    this.#opts.client.close();
  }

  #queueCheck(): void {
    if (this.#checkQueued || this.#closed) return;
    this.#checkQueued = true;
    setImmediate(() => {
      this.#checkQueued = false;
      this.#check();
    });
  }

  #check(): void {
    if (!this.#mayOrder()) return;
    const wanted = servedHosts(this.#opts.routes.list());
    for (const [host, state] of this.#hosts) {
      if (wanted.has(host) || this.#running.has(host)) continue;
      if (state.retryTimer) clearTimeout(state.retryTimer);
      this.#hosts.delete(host);
      this.#opts.book.setAcmeState(host, null);
    }
    const now = Date.now();
    for (const host of wanted) {
      if (this.#running.has(host) || this.#queue.includes(host)) continue;
      if ((this.#hosts.get(host)?.retryAt ?? 0) > now) continue;
      const { book } = this.#opts;
      if (book.coveredBySupplied(host)) continue;
      if (!needsOrder(book.acmeCertificate(host), now, this.#tuning.renewFraction)) continue;
      this.#queue.push(host);
    }
    this.#pump();
  }

  #pump(): void {
    while (this.#mayOrder() && this.#running.size < this.#tuning.maxConcurrent && this.#queue.length > 0) {
      const host = this.#queue.shift()!;
      const run = this.#order(host).finally(() => {
        this.#running.delete(host);
        this.#pump();
      });
      this.#running.set(host, run);
    }
  }

  async #order(host: string): Promise<void> {
    const { book, client, board, challenge, log } = this.#opts;
    const state = this.#hosts.get(host) ?? { failures: 0, retryAt: 0, retryTimer: null };
    this.#hosts.set(host, state);
    this.#ordersPlaced += 1;
    book.setAcmeState(host, { state: 'pending', error: null });
    log.info({ host, challenge }, 'acme: ordering a certificate');
    try {
      const issued = await obtainCertificate(host, { client, board, challenge, signal: this.#abort.signal, deadlineMs: this.#tuning.orderDeadlineMs });
      if (this.#closed) return;
      await book.putAcme(host, issued.certPem, issued.keyPem);
      state.failures = 0;
      state.retryAt = 0;
      log.info({ host, notAfter: book.acmeCertificate(host)?.notAfter.toISOString() ?? null }, 'acme: certificate stored');
    } catch (err) {
      if (this.#closed) return;
      const failure = asAcmeFailure(err);
      state.failures += 1;
      const delay = retryDelayMs(state.failures, this.#tuning);
      state.retryAt = Date.now() + delay;
      book.setAcmeState(host, { state: 'failed', error: failure.message });
      log.warn({ host, reason: failure.message, failures: state.failures, retryInS: Math.round(delay / 1000) }, 'acme: order failed; the certificate the host had is still served');
      if (state.retryTimer) clearTimeout(state.retryTimer);
      state.retryTimer = setTimeout(() => {
        // The timer's clock is not Date.now(): it may fire a millisecond "early", so firing is what makes the host due.
        state.retryTimer = null;
        state.retryAt = 0;
        this.#queueCheck();
      }, delay);
      state.retryTimer.unref();
    }
  }
}

/** Hosts of the routes that are served (no label mistake, no lost conflict), lowercase; an
 * address literal is left out (ACME here orders DNS names only). */
function servedHosts(routes: RouteView[]): Set<string> {
  return new Set(routes.filter((r) => r.error === null && isIP(r.host) === 0).map((r) => r.host.toLowerCase()));
}
