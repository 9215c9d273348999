/** Bodies of the hub's REST API (v1), shared by the hub, the agent's enrollment and the CLI. */
import { z } from 'zod';
import { nodeNameSchema } from './handshake.ts';
import { policySummary } from './policy-summary.ts';

export const NODE_STATUSES = ['pending', 'online', 'offline', 'revoked'] as const;
export type NodeStatus = (typeof NODE_STATUSES)[number];

/** A node's host use (issue 16): each figure null when its agent could not tell; `at` is when the hub got it. */
export const hostUsage = z.object({ cpuBusyRatio: z.number().nullable(), memoryAvailableBytes: z.number().nullable(), at: z.string() });
export type HostUsage = z.infer<typeof hostUsage>;

export const nodeView = z.object({
  name: z.string(),
  status: z.enum(NODE_STATUSES),
  lastSeen: z.string().nullable(),
  engine: z.object({
    version: z.string().nullable(),
    state: z.enum(['up', 'down', 'unknown']),
    error: z.string().optional(),
  }),
  host: z.object({ os: z.string(), arch: z.string(), cpus: z.number(), memoryBytes: z.number(), hostname: z.string() }).nullable(),
  counts: z.object({ containers: z.number(), running: z.number(), images: z.number(), volumes: z.number(), networks: z.number() }),
  /** The agent's version as it said when it connected; null while offline (issue 16). */
  agentVersion: z.string().nullable(),
  /** Node labels (`dockfleet label`), which stack selectors match. */
  labels: z.record(z.string(), z.string()),
  /** What the node's local policy allows, as its agent last reported it; null until it has. */
  policy: policySummary.nullable(),
  /** The head of the host's own audit log as its agent last reported it (not persisted); null until it has. */
  hostAudit: z.object({ seq: z.number(), hash: z.string() }).nullable(),
  /** The host's use as its agent last reported it (CPU busy share 0..1 since the report before, available
   * memory); null while offline or until a report came (an agent that predates these reports sends none). */
  usage: hostUsage.nullable().optional(),
  /** The node's latest rebuild after a replacement host took it over (GET /api/v1/nodes/NAME/rebuild); null when none. */
  rebuild: z.record(z.string(), z.unknown()).nullable().optional(),
});
export type NodeView = z.infer<typeof nodeView>;

export const createEnrollmentBody = z
  .object({
    name: nodeNameSchema,
    ttlSeconds: z
      .number()
      .int()
      .min(1)
      .max(7 * 24 * 3600)
      .optional(),
    /** A code for a host that takes over the existing node NAME, which the hub then rebuilds (issue 14). */
    replace: z.boolean().optional(),
    /** With replace, escrow custody: the recovery code that unwraps the escrowed volume keys (sealed at once). */
    recoveryCode: z.string().min(8).max(200).optional(),
    /** With replace, hub-managed custody: the repositories' password for the restores (sealed at once). */
    resticPassword: z.string().min(1).max(8_192).optional(),
  })
  .refine((b) => b.replace === true || (b.recoveryCode === undefined && b.resticPassword === undefined), 'recoveryCode and resticPassword go with replace: true');
export const enrollmentCreated = z.object({ name: z.string(), code: z.string(), expiresAt: z.string() });

export const createJoinTokenBody = z.object({
  ttlSeconds: z
    .number()
    .int()
    .min(1)
    .max(365 * 24 * 3600)
    .optional(),
});
export const joinTokenCreated = z.object({ token: z.string(), expiresAt: z.string() });

export const enrollBody = z.object({
  code: z.string().max(200),
  /** Required with a join token; with a single-use code it must match the code's name when given. */
  name: nodeNameSchema.optional(),
  publicKey: z.string().max(1000),
});
/** `releaseKey`: the fleet's release key, which the agent pins for good (hub started with --release-key). */
export const enrolled = z.object({
  name: z.string(),
  status: z.enum(NODE_STATUSES),
  releaseKey: z
    .string()
    .regex(/^ed25519:[A-Za-z0-9_-]{43}$/)
    .optional(),
});

export const USER_ROLES = ['admin', 'operator', 'viewer'] as const;
export const createUserBody = z.object({
  name: z.string().regex(/^[a-z0-9][a-z0-9._-]{0,62}$/, 'user names are 1–63 lowercase letters, digits, dots, dashes or underscores'),
  role: z.enum(USER_ROLES),
  /** Optional: lets the user sign in to the web UI (else tokens and certificates only). */
  password: z.string().min(1).max(1024).optional(),
});
/** A token expires: after `expiresInDays` (default 90). */
export const createTokenBody = z.object({ name: z.string().min(1).max(100), expiresInDays: z.number().int().min(1).max(3650).optional() });
export const createClientCertBody = z.object({ publicKey: z.string().max(2000), days: z.number().int().min(1).max(3650).optional() });
export const clientCertIssued = z.object({ serial: z.string(), caPem: z.string(), certPem: z.string(), expiresAt: z.string() });
export const auditQuery = z.object({
  user: z.string().max(100).optional(),
  node: z.string().max(100).optional(),
  since: z.coerce.number().int().nonnegative().optional(),
  until: z.coerce.number().int().nonnegative().optional(),
  before: z.coerce.number().int().positive().optional(),
  limit: z.coerce.number().int().min(1).max(1000).default(100),
});

export const credentialsBody = z.object({ username: z.string().min(1).max(64), password: z.string().min(1).max(1024) });
export const changePasswordBody = z.object({ current: z.string().min(1).max(1024), next: z.string().min(1).max(1024) });

// Answers of the REST API's own routes (rest-app.ts, account and access routes), as the OpenAPI document shows them.
const isoTime = z.string();
export const enrollmentCodeCreated = enrollmentCreated.extend({ replace: z.literal(true).optional() });
export const userCreated = z.object({ name: z.string(), role: z.enum(USER_ROLES), token: z.string() });
export const tokenCreated = z.object({ name: z.string(), token: z.string(), expiresAt: isoTime });
export const tokenSummary = z.object({ id: z.string(), name: z.string(), createdAt: isoTime.nullable(), expiresAt: isoTime.nullable(), lastUsedAt: isoTime.nullable() });
export const clientCertRevoked = z.object({ serial: z.string(), revoked: z.literal(true) });
export const pingAnswer = z.object({ status: z.number().int(), roundTripMicros: z.number().int() });
export const keyRotated = z.object({ keyId: z.string() });
/** Inventory items are the engine's own objects (Docker's list answers), passed through. */
export const inventoryItems = z.array(z.looseObject({}));
export const signedInUser = z.object({ name: z.string(), role: z.enum(USER_ROLES) });
export const grantView = z.object({ id: z.string(), node: z.string().nullable(), selector: z.string().nullable(), role: z.string(), createdAt: isoTime });
export const meView = z.object({
  name: z.string(),
  role: z.enum(USER_ROLES),
  via: z.string(),
  scoped: z.literal(true).optional(),
  grants: z.array(z.object({ node: z.string().nullable(), labelKey: z.string().nullable(), labelValue: z.string().nullable(), role: z.string() })),
});
export const userSummary = z.object({
  name: z.string(),
  role: z.enum(USER_ROLES),
  scoped: z.boolean(),
  hasPassword: z.boolean(),
  builtIn: z.boolean(),
  createdAt: isoTime,
  disabledAt: isoTime.nullable(),
  grants: z.array(grantView),
});
export const userChanged = z.object({ name: z.string(), role: z.enum(USER_ROLES), scoped: z.boolean(), disabled: z.boolean() });
export const pendingCode = z.object({ id: z.string(), kind: z.enum(['code', 'join-token']), node: z.string().nullable(), createdAt: isoTime, expiresAt: isoTime });
export const auditRow = z.looseObject({
  id: z.number().int(),
  at: z.number(),
  time: isoTime,
  startedAt: isoTime,
  status: z.number().int().nullable(),
  user: z.string(),
  node: z.string().nullable(),
  method: z.string(),
  path: z.string(),
});
/** A plain acknowledgement: `{removed: true}`, `{revoked: true}` and the like, with the thing's id. */
export const done = (flag: string) => z.looseObject({ [flag]: z.literal(true) });
