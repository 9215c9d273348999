/**
 * One certificate for one host, from order to chain (RFC 8555 §7.4): place the order, answer
 * each pending authorization with the chosen challenge — HTTP-01 through the challenge board's
 * token answers at `--edge-http`, or TLS-ALPN-01 through its challenge certificate at the edge
 * port — wait for validation, finalize with a fresh key's CSR, and download the chain. What was
 * posted on the board is taken down whatever happens. The chain is checked against the key and
 * the host before it is handed back.
 */
import { X509Certificate, createPrivateKey } from 'node:crypto';
import { setTimeout as sleep } from 'node:timers/promises';
import type { ChallengeBoard } from '../certs/challenge-board.ts';
import type { AcmeAuthorization, AcmeClient, AcmeOrder } from './acme-client.ts';
import { AcmeFailure } from './acme-failure.ts';
import { alpnChallengeCertificate, certificateRequest } from './acme-material.ts';

export type ChallengeType = 'http-01' | 'tls-alpn-01';

export interface OrderDeps {
  client: AcmeClient;
  board: ChallengeBoard;
  challenge: ChallengeType;
  signal: AbortSignal;
  /** How long one order may wait on validation and issuance in all. */
  deadlineMs: number;
}

export interface IssuedCertificate {
  certPem: string;
  keyPem: string;
}

export async function obtainCertificate(host: string, deps: OrderDeps): Promise<IssuedCertificate> {
  const tokens = new Set<string>();
  try {
    return await walkOrder(host, deps, tokens, Date.now() + deps.deadlineMs);
  } catch (err) {
    // Tokens are public by design, but nothing from a challenge belongs in logs or the routes view.
    throw err instanceof AcmeFailure ? err.redacted(tokens) : err;
  }
}

async function walkOrder(host: string, deps: OrderDeps, tokens: Set<string>, deadline: number): Promise<IssuedCertificate> {
  const { client, signal } = deps;
  const placed = await client.newOrder(host, signal);
  for (const authzUrl of placed.order.authorizations) await authorize(host, authzUrl, deps, tokens, deadline);

  const readOrder = async (): Promise<Polled<AcmeOrder>> => {
    const { order, retryAfterMs } = await client.order(placed.url, signal);
    return { value: order, retryAfterMs };
  };
  let order = await poll(readOrder, (o) => o.status !== 'pending', deadline, signal, 'the order to become ready');
  if (order.status !== 'ready' && order.status !== 'valid') throw orderFailure(order, host);
  const request = await certificateRequest(host);
  if (order.status === 'ready') {
    order = await client.finalize(order.finalize, request.csr, signal);
    if (order.status === 'processing' || order.status === 'ready') {
      order = await poll(readOrder, (o) => o.status !== 'processing' && o.status !== 'ready', deadline, signal, 'the certificate to be issued');
    }
  }
  if (order.status !== 'valid' || !order.certificate) throw orderFailure(order, host);
  const certPem = await client.certificateChain(order.certificate, signal);
  checkIssued(certPem, request.keyPem, host);
  return { certPem, keyPem: request.keyPem };
}

async function authorize(host: string, url: string, deps: OrderDeps, tokens: Set<string>, deadline: number): Promise<void> {
  const { client, board, signal } = deps;
  const { authz } = await client.authorization(url, signal);
  if (authz.status === 'valid') return;
  if (authz.status !== 'pending') throw new AcmeFailure('problem', `ACME server refused the order for ${host}: its authorization is ${authz.status}`);
  const name = authz.identifier.value.toLowerCase();
  const challenge = authz.challenges.find((c) => c.type === deps.challenge);
  if (!challenge?.token) throw new AcmeFailure('problem', `ACME server offers no ${deps.challenge} challenge for ${name}`);
  const token = challenge.token;
  tokens.add(token);
  const keyAuthorization = await client.keyAuthorization(token);
  if (deps.challenge === 'http-01') board.setHttp(token, keyAuthorization);
  else board.setAlpn(name, await alpnChallengeCertificate(name, keyAuthorization));
  try {
    await client.respond(challenge.url, signal);
    const readAuthz = async (): Promise<Polled<AcmeAuthorization>> => {
      const read = await client.authorization(url, signal);
      return { value: read.authz, retryAfterMs: read.retryAfterMs };
    };
    const done = await poll(readAuthz, (a) => a.status !== 'pending', deadline, signal, `the ${deps.challenge} validation of ${name}`);
    if (done.status === 'valid') return;
    const failed = done.challenges.find((c) => c.type === deps.challenge && c.error !== undefined);
    if (failed) throw AcmeFailure.fromProblem(failed.error, null, `the ${deps.challenge} challenge for ${name}`);
    throw new AcmeFailure('problem', `ACME server refused the ${deps.challenge} challenge for ${name}: authorization ${done.status}`);
  } finally {
    if (deps.challenge === 'http-01') board.deleteHttp(token);
    else board.deleteAlpn(name);
  }
}

/** Reads until `settled`, waiting as the server asks (Retry-After) within bounds, until the deadline. */
interface Polled<T> {
  value: T;
  retryAfterMs: number | null;
}

async function poll<T>(read: () => Promise<Polled<T>>, settled: (t: T) => boolean, deadline: number, signal: AbortSignal, what: string): Promise<T> {
  let waitMs = 100;
  for (;;) {
    const answer = await read();
    if (settled(answer.value)) return answer.value;
    if (Date.now() + waitMs > deadline) throw new AcmeFailure('timeout', `ACME server did not finish ${what} in time`);
    await sleep(Math.min(Math.max(answer.retryAfterMs ?? waitMs, 100), 5_000), undefined, { signal });
    waitMs = Math.min(waitMs * 2, 2_000);
  }
}

function orderFailure(order: AcmeOrder, host: string): AcmeFailure {
  if (order.error !== undefined) return AcmeFailure.fromProblem(order.error, null, `the order for ${host}`);
  return new AcmeFailure('problem', `ACME server left the order for ${host} ${order.status}`);
}

function checkIssued(chainPem: string, keyPem: string, host: string): void {
  const leafPem = /-----BEGIN CERTIFICATE-----[\s\S]+?-----END CERTIFICATE-----/.exec(chainPem)?.[0];
  let leaf: X509Certificate;
  try {
    leaf = new X509Certificate(leafPem ?? '');
  } catch {
    throw new AcmeFailure('protocol', `the certificate issued for ${host} does not parse`);
  }
  if (leaf.checkHost(host) === undefined) throw new AcmeFailure('protocol', `the certificate issued for ${host} does not name it`);
  if (!leaf.checkPrivateKey(createPrivateKey(keyPem))) throw new AcmeFailure('protocol', `the certificate issued for ${host} is not for the key that was sent`);
}
