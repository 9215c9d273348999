/**
 * A compact ACME client (RFC 8555) for the hub's edge: the directory, nonces, the account
 * (registered on first need, again if the server forgets it), and the signed requests an order
 * needs. Every answer is checked against a schema before it is used; an error answer becomes an
 * AcmeFailure carrying the server's problem document; a `badNonce` is retried with the nonce the
 * server sent, as §6.5 asks. The order itself is walked by acme-order.ts.
 */
import { z } from 'zod';
import type { AcmeAccountFile } from './acme-account-file.ts';
import { AcmeFailure } from './acme-failure.ts';
import type { AccountKey, JwsSigner } from './acme-jws.ts';
import type { AcmeAnswer, AcmeTransport } from './acme-transport.ts';

const JOSE = 'application/jose+json';
const BAD_NONCE_RETRIES = 3;

const directorySchema = z.object({ newNonce: z.string().url(), newAccount: z.string().url(), newOrder: z.string().url() });
const problemish = z.unknown().optional();

export const challengeSchema = z.object({ type: z.string(), url: z.string().url(), status: z.string(), token: z.string().optional(), error: problemish });
export const authorizationSchema = z.object({
  status: z.enum(['pending', 'valid', 'invalid', 'deactivated', 'expired', 'revoked']),
  identifier: z.object({ type: z.string(), value: z.string() }),
  challenges: z.array(challengeSchema),
});
export const orderSchema = z.object({
  status: z.enum(['pending', 'ready', 'processing', 'valid', 'invalid']),
  authorizations: z.array(z.string().url()),
  finalize: z.string().url(),
  certificate: z.string().url().optional(),
  error: problemish,
});
export type AcmeOrder = z.infer<typeof orderSchema>;
export type AcmeAuthorization = z.infer<typeof authorizationSchema>;
export type AcmeChallenge = z.infer<typeof challengeSchema>;

export interface AcmeClientOptions {
  directoryUrl: string;
  /** Account contact (`mailto:`), or null for none. */
  email: string | null;
  transport: AcmeTransport;
  account: AcmeAccountFile;
}

export class AcmeClient {
  readonly #opts: AcmeClientOptions;
  #directory: z.infer<typeof directorySchema> | null = null;
  #nonce: string | null = null;
  /** The registration in flight: orders side by side wait for one account, not one each. */
  #registering: Promise<string> | null = null;

  constructor(opts: AcmeClientOptions) {
    this.#opts = opts;
  }

  /** Ends the kept-alive connections to the ACME server. */
  close(): void {
    this.#opts.transport.close();
  }

  /** The key authorization for TOKEN under this hub's account key. */
  async keyAuthorization(token: string): Promise<string> {
    return (await this.#opts.account.load()).key.keyAuthorization(token);
  }

  async newOrder(host: string, signal?: AbortSignal): Promise<{ url: string; order: AcmeOrder }> {
    const dir = await this.#directoryOf(signal);
    const answer = await this.#signed(dir.newOrder, { identifiers: [{ type: 'dns', value: host }] }, `an order for ${host}`, signal);
    const url = header(answer, 'location');
    if (!url) throw new AcmeFailure('protocol', 'the ACME server created an order without saying where (no Location)');
    return { url, order: parse(orderSchema, answer, 'order') };
  }

  async order(url: string, signal?: AbortSignal): Promise<{ order: AcmeOrder; retryAfterMs: number | null }> {
    const answer = await this.#signed(url, undefined, 'reading the order', signal);
    return { order: parse(orderSchema, answer, 'order'), retryAfterMs: retryAfter(answer) };
  }

  async authorization(url: string, signal?: AbortSignal): Promise<{ authz: AcmeAuthorization; retryAfterMs: number | null }> {
    const answer = await this.#signed(url, undefined, 'reading an authorization', signal);
    return { authz: parse(authorizationSchema, answer, 'authorization'), retryAfterMs: retryAfter(answer) };
  }

  /** Tells the server the challenge is ready to be validated (§7.5.1). */
  async respond(challengeUrl: string, signal?: AbortSignal): Promise<void> {
    await this.#signed(challengeUrl, {}, 'the challenge answer', signal);
  }

  async finalize(url: string, csr: string, signal?: AbortSignal): Promise<AcmeOrder> {
    return parse(orderSchema, await this.#signed(url, { csr }, 'the certificate request', signal), 'order');
  }

  /** The issued chain, leaf first, as PEM. */
  async certificateChain(url: string, signal?: AbortSignal): Promise<string> {
    const answer = await this.#signed(url, undefined, 'the certificate download', signal, 'application/pem-certificate-chain');
    const pem = answer.body.toString('utf8');
    if (!pem.includes('-----BEGIN CERTIFICATE-----')) throw new AcmeFailure('protocol', 'the ACME server sent a certificate that is not PEM');
    return pem;
  }

  /** A signed POST (payload undefined: POST-as-GET) by the account, registering it first if needed. */
  async #signed(url: string, payload: unknown, what: string, signal?: AbortSignal, accept?: string): Promise<AcmeAnswer> {
    const account = await this.#opts.account.load();
    let kid: string | null = null;
    const attempt = async (): Promise<AcmeAnswer> => {
      kid = account.url ?? (await this.#register(account.key, signal));
      if (account.contact !== this.#opts.email) await this.#updateContact(account.key, kid, signal);
      return this.#post(url, payload, account.key, { kid }, what, signal, accept);
    };
    try {
      return await attempt();
    } catch (err) {
      // A server that lost its accounts (a restarted test CA, a reset staging server): register the same key again, once.
      if (!(err instanceof AcmeFailure && err.problemType === 'accountDoesNotExist')) throw err;
      if (kid !== null && account.url === kid) await this.#opts.account.saveRegistration(null, null);
      return attempt();
    }
  }

  #register(key: AccountKey, signal?: AbortSignal): Promise<string> {
    this.#registering ??= this.#registerNow(key, signal).finally(() => {
      this.#registering = null;
    });
    return this.#registering;
  }

  async #registerNow(key: AccountKey, signal?: AbortSignal): Promise<string> {
    const dir = await this.#directoryOf(signal);
    const contact = this.#opts.email === null ? [] : [`mailto:${this.#opts.email}`];
    const answer = await this.#post(dir.newAccount, { termsOfServiceAgreed: true, contact }, key, { jwk: true }, 'the account registration', signal);
    const url = header(answer, 'location');
    if (!url) throw new AcmeFailure('protocol', 'the ACME server registered the account without giving its URL (no Location)');
    await this.#opts.account.saveRegistration(url, this.#opts.email);
    return url;
  }

  /** `--acme-email` changed since the account was registered: tell the server (§7.3.2). */
  async #updateContact(key: AccountKey, kid: string, signal?: AbortSignal): Promise<void> {
    const contact = this.#opts.email === null ? [] : [`mailto:${this.#opts.email}`];
    await this.#post(kid, { contact }, key, { kid }, 'the account contact update', signal);
    await this.#opts.account.saveRegistration(kid, this.#opts.email);
  }

  async #post(url: string, payload: unknown, key: AccountKey, signer: JwsSigner, what: string, signal?: AbortSignal, accept?: string): Promise<AcmeAnswer> {
    for (let attempt = 0; ; attempt++) {
      const nonce = await this.#takeNonce(signal);
      const body = JSON.stringify(key.sign(url, nonce, signer, payload));
      const answer = await this.#opts.transport.request({ method: 'POST', url, body, contentType: JOSE, ...(accept ? { accept } : {}), ...(signal ? { signal } : {}) });
      this.#keepNonce(answer);
      if (answer.status < 400) return answer;
      const failure = AcmeFailure.fromProblem(json(answer), answer.status, what);
      if (failure.problemType === 'badNonce' && attempt < BAD_NONCE_RETRIES) continue;
      throw failure;
    }
  }

  async #directoryOf(signal?: AbortSignal): Promise<z.infer<typeof directorySchema>> {
    if (this.#directory) return this.#directory;
    const answer = await this.#opts.transport.request({ method: 'GET', url: this.#opts.directoryUrl, ...(signal ? { signal } : {}) });
    if (answer.status !== 200) throw AcmeFailure.fromProblem(json(answer), answer.status, 'the directory request');
    this.#directory = parse(directorySchema, answer, 'directory');
    return this.#directory;
  }

  async #takeNonce(signal?: AbortSignal): Promise<string> {
    const kept = this.#nonce;
    this.#nonce = null;
    if (kept) return kept;
    const dir = await this.#directoryOf(signal);
    const answer = await this.#opts.transport.request({ method: 'HEAD', url: dir.newNonce, ...(signal ? { signal } : {}) });
    const nonce = header(answer, 'replay-nonce');
    if (!nonce) throw new AcmeFailure('protocol', `the ACME server gave no nonce (HTTP ${answer.status})`);
    return nonce;
  }

  #keepNonce(answer: AcmeAnswer): void {
    const nonce = header(answer, 'replay-nonce');
    if (nonce) this.#nonce = nonce;
  }
}

function header(answer: AcmeAnswer, name: string): string | null {
  const value = answer.headers[name];
  return typeof value === 'string' && value !== '' ? value : null;
}

function json(answer: AcmeAnswer): unknown {
  try {
    return JSON.parse(answer.body.toString('utf8'));
  } catch {
    return null;
  }
}

function parse<T>(schema: z.ZodType<T>, answer: AcmeAnswer, what: string): T {
  const result = schema.safeParse(json(answer));
  if (!result.success) throw new AcmeFailure('protocol', `the ACME server sent a malformed ${what} (HTTP ${answer.status})`);
  return result.data;
}

/** Retry-After in seconds or as a date (§8.2), when the server sent one. */
function retryAfter(answer: AcmeAnswer): number | null {
  const value = header(answer, 'retry-after');
  if (value === null) return null;
  if (/^\d+$/.test(value)) return Number(value) * 1000;
  const at = Date.parse(value);
  return Number.isNaN(at) ? null : Math.max(0, at - Date.now());
}
