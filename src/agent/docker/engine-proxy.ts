/**
 * The agent's end of the Docker gateway: one hub stream in, one engine request out, bytes
 * piped both ways with backpressure. A hijacked call (attach/exec) becomes a raw duplex pipe
 * between the HTTP/2 stream and the engine's upgraded socket once the engine says 101.
 *
 * On a host whose policy asks for signed intent (src/agent/intent/), a call in scope is checked
 * before the policy gate: its intent must be valid for this node and this exact operation, and
 * its body must be the one signed — read whole (at most 1 MiB) and digested, or unsealed on its
 * way to the engine (a seal that fails aborts the engine call; the engine only ever saw bytes
 * whose seals verified). A hijacked call's JSON body is checked the same way, and its stdin
 * after the upgrade is unsealed when the intent says `stream` (and refused when it does not).
 * The one exception to "before": a plain read on a host that requires "all" is sent to the
 * engine first and checked in the same tick, before its answer can be read (a failed check
 * cuts the engine call off), so the signature costs a read no more than the engine's own time.
 * Every mutating call executed, and every refusal, goes to the host's audit log.
 */
import http, { type IncomingMessage } from 'node:http';
import type { Http2ServerRequest, Http2ServerResponse } from 'node:http2';
import type { Socket } from 'node:net';
import { ACTOR_HEADER, AUDIT_REF_HEADER, INTENT_BODY_HEADER, INTENT_HEADER, decodeIntent, dockerOp, type IntentClaims } from '../../protocol/intent.ts';
import { verifyBytes } from '../../lib/intent-keys.ts';
import { BODY_LENGTH_HEADER, DOCKER_PREFIX, POLICY_REFUSAL_HEADER, UPGRADED_HEADER, UPGRADE_HEADER, dockerErrorBody, forwardableHeaders } from '../../protocol/docker-tunnel.ts';
import type { Logger } from '../../lib/logger.ts';
import { readBounded } from '../../lib/read-bounded.ts';
import { relay } from '../../lib/relay.ts';
import { EngineHttp } from './engine-http.ts';
import type { HostAuditLog } from '../audit/host-audit.ts';
import { normaliseApiPath } from '../policy/classify-request.ts';
import { bodyMatches } from '../intent/intent-verifier.ts';
import { callHints, hintFields, intentHeaders, intentRefusalText, type IntentGuard } from '../intent/intent-guard.ts';
import { UnsealStream, Unsealer } from '../intent/unseal-stream.ts';

export interface EngineTarget {
  socketPath: string;
}

export type GateVerdict = { allowed: true } | { allowed: false; reason: string };

/** The part of a Docker request the policy needs; the proxy buffers the body only when asked. */
export interface DockerGate {
  /** Whether this request's body must be read (bounded) before deciding. */
  needsBody(method: string, path: string): boolean;
  /** May consult the engine and the host's filesystem (policy-gate.ts); never rejects. */
  check(method: string, path: string, body: Buffer | null): GateVerdict | Promise<GateVerdict>;
}

/** Every refusal by this host's policy is logged here, on the host: method, path, reason. Never
 * the body, nor the query (a remote build URL may carry a token); reasons never quote secrets. */
function logRefusal(log: Logger, method: string, path: string, reason: string): void {
  log.warn({ method, path: path.split('?')[0], reason }, 'docker call refused by local policy');
}

export const MAX_INSPECTED_BODY = 1024 * 1024;
/** A hijacked call's sealed JSON body: MAX_INSPECTED_BODY of data and its frames. */
const MAX_FRAMED_HIJACK_BODY = 2 * MAX_INSPECTED_BODY;
/** The hub's and the intent's headers: for this agent, never for the engine. */
const AGENT_ONLY_HEADERS = [UPGRADE_HEADER, BODY_LENGTH_HEADER, 'content-length', INTENT_HEADER, INTENT_BODY_HEADER, ACTOR_HEADER, AUDIT_REF_HEADER];

export interface EngineProxyOptions {
  /** Signed intent on this host (absent: nothing required, and sealed bodies are refused). */
  intent?: IntentGuard;
  /** The host's own audit log; defaults to the guard's. */
  audit?: HostAuditLog | null;
}

/** The host log's operation (method and path, no API version, no query) and target of a call. */
function auditedCall(method: string, path: string): { op: string; target: string } {
  const normal = normaliseApiPath(path) ?? path.split('?')[0] ?? path;
  const segments = normal.split('/').filter(Boolean);
  return { op: `${method} ${normal}`, target: segments[1] ?? segments[0] ?? '/' };
}

function sendError(res: Http2ServerResponse, status: number, message: string, extra: Record<string, string> = {}): void {
  if (res.headersSent) return void res.stream.close();
  const body = dockerErrorBody(message);
  res.writeHead(status, { 'content-type': 'application/json', 'content-length': Buffer.byteLength(body), ...extra });
  res.end(body);
}

/** Reads exactly `length` bytes and leaves anything after them in the stream. */
async function readExactly(req: Http2ServerRequest, length: number, limit: number): Promise<Buffer | null> {
  if (!Number.isInteger(length) || length < 0 || length > limit) return null;
  const chunks: Buffer[] = [];
  let size = 0;
  while (size < length) {
    const chunk =
      (req.read() as Buffer | null) ??
      (await new Promise<Buffer | null>((resolve) => {
        const done = (): void => {
          req.off('readable', onReadable);
          req.off('end', onEnd);
        };
        const onReadable = (): void => {
          done();
          resolve((req.read() as Buffer | null) ?? Buffer.alloc(0));
        };
        const onEnd = (): void => {
          done();
          resolve(null);
        };
        req.once('readable', onReadable);
        req.once('end', onEnd);
      }));
    if (chunk === null) return null;
    const need = length - size;
    if (chunk.length > need) {
      req.unshift(chunk.subarray(need));
      chunks.push(chunk.subarray(0, need));
      size = length;
    } else {
      chunks.push(chunk);
      size += chunk.length;
    }
  }
  return Buffer.concat(chunks, length);
}

export function createEngineProxy(engine: EngineTarget, gate: DockerGate, log: Logger, opts: EngineProxyOptions = {}) {
  const engineHttp = new EngineHttp(engine.socketPath);
  const guard = opts.intent ?? null;
  const audit = opts.audit ?? guard?.audit ?? null;
  return async function proxy(req: Http2ServerRequest, res: Http2ServerResponse): Promise<void> {
    const path = req.url.slice(DOCKER_PREFIX.length) || '/';
    const method = req.method;
    const upgrade = req.headers[UPGRADE_HEADER] !== undefined;
    const mutating = upgrade || (method !== 'GET' && method !== 'HEAD');
    const hints = callHints(req);
    const call = auditedCall(method, path);
    let claims: IntentClaims | undefined;
    const refuse = (status: number, reason: string, intentReason: boolean): void => {
      logRefusal(log, method, path, reason);
      if (mutating || intentReason) audit?.append({ ...call, result: 'refused', status, reason, ...hintFields(hints, claims) });
      sendError(res, status, intentReason && guard ? intentRefusalText(guard.node, reason) : reason, { [POLICY_REFUSAL_HEADER]: 'refused' });
    };

    // Signed intent first: nothing about this call is believed before its signature is.
    const { intent, sealed } = intentHeaders(req);
    const required = guard?.requires('docker', method) ?? false;
    const target = { op: dockerOp(method, path), bodyMode: sealed ? 'stream' : 'digest' } as const;
    // A plain read on a host that requires "all" is checked while the engine already works on
    // it (`signedAsSent`, below): its answer is withheld until then, and the call is cut off when the
    // check fails. Anything that can change the host is checked before the engine hears of it.
    let overlapped = required && !mutating && !sealed && !upgrade;
    if (required && !overlapped) {
      const checked = guard!.check(intent, target);
      claims = checked.claims;
      if (!checked.ok) return refuse(403, checked.reason, true);
    } else if (sealed) {
      // Framed anyway (a signer that signs everything): unsealed by the key its intent names.
      const decoded = decodeIntent(typeof intent === 'string' ? intent : '');
      if (!decoded.ok || !verifyBytes(decoded.intent.claims.key, decoded.intent.signedBytes, decoded.intent.signature)) {
        return refuse(400, 'a sealed body needs a valid signed intent to be unsealed', false);
      }
      claims = decoded.intent.claims;
    }
    const unsealer = sealed && claims ? new Unsealer(claims.key, claims.nonce) : null;
    const digestChecked = required && unsealer === null;

    let body: Buffer | null = null;
    let bodyStream: UnsealStream | null = null;
    if (upgrade) {
      // The body and the raw stream share the HTTP/2 stream: take exactly Content-Length.
      const raw = await readExactly(req, Number(req.headers[BODY_LENGTH_HEADER] ?? 0), unsealer ? MAX_FRAMED_HIJACK_BODY : MAX_INSPECTED_BODY);
      if (raw === null) return refuse(400, 'hijacked request with a malformed or oversized body', false);
      body = raw;
      if (unsealer) {
        // Sealed: the framed JSON body ends at a seal; its stdin continues the same stream.
        try {
          body = Buffer.concat(unsealer.push(raw));
        } catch (err) {
          return refuse(403, (err as Error).message, true);
        }
        if (!unsealer.atSeal) return refuse(403, 'the sealed body of an exec or attach call must end at a seal', true);
      }
    } else if (unsealer) {
      bodyStream = new UnsealStream(unsealer);
      req.pipe(bodyStream);
      if (gate.needsBody(method, path)) {
        try {
          body = await readBounded(bodyStream as AsyncIterable<Buffer>, MAX_INSPECTED_BODY);
        } catch (err) {
          return refuse(403, (err as Error).message, true);
        }
        if (body === null) return refuse(413, `request body over ${MAX_INSPECTED_BODY} bytes cannot be inspected by this host's policy`, false);
        bodyStream = null;
      }
    } else if (digestChecked || gate.needsBody(method, path)) {
      // Read once, for the signature and the gate alike.
      body = req.stream.endAfterHeaders ? Buffer.alloc(0) : await readBounded(req as AsyncIterable<Buffer>, MAX_INSPECTED_BODY);
      if (body === null) {
        if (digestChecked) return refuse(403, `a body over ${MAX_INSPECTED_BODY} bytes must be sent sealed`, true);
        return refuse(413, `request body over ${MAX_INSPECTED_BODY} bytes cannot be inspected by this host's policy`, false);
      }
    }
    /** The intent and body of a digest-signed call: true when they hold (refused otherwise). */
    let settled = false;
    const signedAsSent = (): boolean => {
      if (settled) return true;
      settled = true;
      if (overlapped) {
        overlapped = false;
        const checked = guard!.check(intent, target);
        claims = checked.claims;
        if (!checked.ok) {
          refuse(403, checked.reason, true);
          return false;
        }
      }
      if (digestChecked && claims && !bodyMatches(claims, body ?? Buffer.alloc(0))) {
        refuse(403, 'the body is not the one that was signed', true);
        return false;
      }
      return true;
    };
    if (!overlapped && !signedAsSent()) return;
    const verdict = await gate.check(method, path, body);
    if (!verdict.allowed) return void (signedAsSent() && refuse(403, verdict.reason, false));
    // The hub's caller may have gone while the host was being checked.
    if (res.stream.destroyed) return void bodyStream?.destroy();
    const headers = forwardableHeaders(req.headers as Record<string, string | string[] | undefined>, new Set(AGENT_ONLY_HEADERS));
    if (body !== null) headers['content-length'] = String(body.length);
    else if (req.headers['content-length'] !== undefined && !unsealer) headers['content-length'] = String(req.headers['content-length']);
    const executed = (status: number): void => {
      if (mutating) audit?.append({ ...call, result: status < 400 ? 'ok' : 'failed', status, ...hintFields(hints, claims) });
    };
    if (!upgrade) {
      // An ordinary call: our own HTTP/1.1 client (engine-http.ts), the bulk path.
      const bodySource = body !== null ? body : (bodyStream ?? (req.stream.endAfterHeaders ? null : req));
      // A seal that fails: the engine call is cut off (it never saw the unverified bytes).
      let unsealFailed = false;
      let abortCall = (): void => {};
      bodyStream?.once('error', (err) => {
        unsealFailed = true;
        abortCall();
        refuse(403, err.message, true);
      });
      abortCall = engineHttp.request(
        { method, path, headers: { ...headers, host: 'docker' }, body: bodySource },
        (engineRes) => {
          executed(engineRes.statusCode);
          res.writeHead(engineRes.statusCode, forwardableHeaders(engineRes.headers));
          relay(engineRes, res.stream);
        },
        (err) => {
          if (!signedAsSent()) return;
          if (!unsealFailed) sendError(res, 502, `dockfleet agent could not reach the Docker engine: ${err.message}`);
        },
      );
      // Synchronously, before any answer from the engine can be read: the overlapped read's check.
      if (!signedAsSent()) return void abortCall();
      // The hub (or its client) went away: stop the engine call too (log follows, stats, …).
      res.once('close', abortCall);
      return;
    }

    // A hijacked call (attach, exec start): Node's client hands over the upgraded socket.
    Object.assign(headers, { connection: 'Upgrade', upgrade: 'tcp' });
    const out = http.request({ socketPath: engine.socketPath, method, path, headers: { ...headers, host: 'docker' } });
    res.once('close', () => void out.destroy());
    out.once('response', (engineRes: IncomingMessage) => {
      executed(engineRes.statusCode ?? 502);
      // The engine answered without switching protocols (an error, usually): pass it on.
      res.writeHead(engineRes.statusCode ?? 502, forwardableHeaders(engineRes.headers));
      relay(engineRes, res.stream);
    });
    out.once('upgrade', (engineRes: IncomingMessage, socket: Socket, head: Buffer) => {
      res.writeHead(200, { ...forwardableHeaders(engineRes.headers), [UPGRADED_HEADER]: String(engineRes.statusCode ?? 101) });
      if (head.length > 0) res.write(head);
      // Engine → hub until the engine closes; hub → engine, with its end as the engine's stdin EOF.
      executed(engineRes.statusCode ?? 101);
      socket.on('error', () => res.stream.close());
      socket.pipe(res);
      res.once('close', () => socket.destroy());
      if (unsealer) {
        // Sealed stdin: the engine gets each part once its seal verified; a bad seal ends the call.
        const stdin = new UnsealStream(unsealer);
        stdin.once('error', (err) => {
          logRefusal(log, method, path, err.message);
          audit?.append({ ...call, result: 'refused', status: 403, reason: err.message, ...hintFields(hints, claims) });
          socket.destroy();
          res.stream.close();
        });
        req.pipe(stdin).pipe(socket);
      } else if (required) {
        // Signed over its JSON body only: stdin bytes would be unsigned, so none are taken.
        req.on('data', (chunk: Buffer) => {
          if (chunk.length === 0 || socket.destroyed) return;
          const reason = 'stdin of a signed exec or attach call must be sealed';
          logRefusal(log, method, path, reason);
          audit?.append({ ...call, result: 'refused', status: 403, reason, ...hintFields(hints, claims) });
          socket.destroy();
          res.stream.close();
        });
      } else {
        req.pipe(socket);
      }
    });
    out.once('error', (err) => sendError(res, 502, `dockfleet agent could not reach the Docker engine: ${err.message}`));
    out.end(body ?? undefined);
  };
}
