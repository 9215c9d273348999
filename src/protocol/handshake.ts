/**
 * The agent gateway handshake. After the WebSocket upgrade (gateway-stream.ts), hub and agent
 * exchange a few JSON lines (validated here), then the same connection carries one HTTP/2
 * session: the hub is the HTTP/2 client, the agent the server, so every request is
 * hub-initiated while the TCP connection stays agent-initiated. Once HTTP/2 runs, the hub's
 * parting words (revoked, replaced, …) travel as an error frame in the GOAWAY's debug data.
 */
import { z } from 'zod';
import { ERROR_CODES, type ErrorCode } from './errors.ts';

export const PROTOCOL_VERSION = 1;
/** Path of the WebSocket upgrade on the hub's port. */
export const GATEWAY_PATH = '/gateway/v1/agent';
/** WebSocket subprotocol: names the framing inside the socket (gateway-stream.ts). */
export const GATEWAY_SUBPROTOCOL = 'dockfleet.h2.v2';
/** Handshake lines are small; anything larger is a protocol error. */
export const MAX_HANDSHAKE_FRAME = 8 * 1024;
/** Label for the TLS exported keying material that binds the signature to one TLS session. */
export const EKM_LABEL = 'EXPORTER-dockfleet-gateway-v1';
export const EKM_LENGTH = 32;
export const EKM_CONTEXT = Buffer.alloc(0);

const base64url = z
  .string()
  .regex(/^[A-Za-z0-9_-]+$/)
  .max(512);
export const nodeNameSchema = z.string().regex(/^[a-z0-9][a-z0-9-]{0,62}$/, 'node names are 1–63 lowercase letters, digits or dashes, not starting with a dash');

export const challengeFrame = z.object({
  t: z.literal('challenge'),
  v: z.number().int(),
  nonce: base64url,
});

export const authFrame = z.object({
  t: z.literal('auth'),
  v: z.number().int(),
  node: nodeNameSchema,
  keyId: z.string().regex(/^[0-9a-f]{32}$/),
  sig: base64url,
  agentVersion: z.string().max(64),
});

export const pendingFrame = z.object({ t: z.literal('pending') });
/** Sent by the hub while a node waits for approval, so the agent can tell a live hub from a dead one. */
export const keepaliveFrame = z.object({ t: z.literal('keepalive') });

/** Hub replicas an agent may dial (https:// URLs, all serving certificates from the one CA). */
export const MAX_REPLICAS = 64;
export const replicaListSchema = z.array(z.url({ protocol: /^https$/ }).max(2048)).max(MAX_REPLICAS);

export const welcomeFrame = z.object({
  t: z.literal('welcome'),
  v: z.number().int(),
  node: nodeNameSchema,
  heartbeatMs: z.number().int().positive(),
  deadAfterMs: z.number().int().positive(),
  /** Every replica this agent may dial (issue 17). Absent from a single hub, and ignored by
   * agents that predate it (zod drops unknown keys), so old and new interoperate both ways. */
  replicas: replicaListSchema.optional(),
});

/**
 * Sent by a replica that is shutting down, in the GOAWAY's debug data (code NO_ERROR): "move to
 * one of these". Calls already in flight on the link go on until they end; the agent dials
 * another replica at once. An agent that predates it does not recognise the frame and simply
 * sees a graceful GOAWAY: its link ends once the calls in flight have, and it redials.
 */
export const moveFrame = z.object({
  t: z.literal('move'),
  reason: z.literal('draining'),
  replicas: replicaListSchema,
});
export type MoveFrame = z.infer<typeof moveFrame>;

/** The hub's push of a changed replica list to a connected agent: PUT, JSON `{ replicas }`. */
export const REPLICAS_PATH = '/_dockfleet/replicas';
export const replicasMessage = z.object({ replicas: replicaListSchema });

export const errorFrame = z.object({
  t: z.literal('error'),
  code: z.string().refine((c): c is ErrorCode => Object.hasOwn(ERROR_CODES, c)),
  message: z.string().max(500),
  retryAfterMs: z.number().int().nonnegative().optional(),
});

export type ChallengeFrame = z.infer<typeof challengeFrame>;
export type AuthFrame = z.infer<typeof authFrame>;
export type WelcomeFrame = z.infer<typeof welcomeFrame>;
export type ErrorFrame = { t: 'error'; code: ErrorCode; message: string; retryAfterMs?: number };

export const hubFrame = z.discriminatedUnion('t', [challengeFrame, pendingFrame, keepaliveFrame, welcomeFrame, errorFrame]);
export type HubFrame = z.infer<typeof hubFrame>;

/** Bytes an agent signs to prove it holds its key, bound to the hub's nonce and to the TLS
 * session (exported keying material), so a captured signature is useless anywhere else. */
export function authPayload(node: string, nonce: string, ekm: Buffer): Buffer {
  return Buffer.from(`dockfleet-gateway-v${PROTOCOL_VERSION}\n${node}\n${nonce}\n${ekm.toString('hex')}`);
}

/** Parses a JSON handshake line with a schema; returns null for anything malformed. */
export function parseFrame<T>(schema: z.ZodType<T>, data: string): T | null {
  let raw: unknown;
  try {
    raw = JSON.parse(data);
  } catch {
    return null;
  }
  const parsed = schema.safeParse(raw);
  return parsed.success ? parsed.data : null;
}
