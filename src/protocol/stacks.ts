/**
 * A stack's project as the hub sends it to an agent: the Compose file, validated against the
 * Compose Specification and normalised at the hub (short syntax made long, variables
 * interpolated, env_file contents merged), so the agent needs no YAML and no guessing. Every
 * key is explicit; anything Compose allows that dockfleet does not support was refused at the
 * hub with its name. Secret values never travel inside the project: services name the secret
 * variables they take (`secretEnvironment`), and the job carries the values apart.
 */
import { z } from 'zod';

/** Compose's own rule for project names (lowercase, digits, dashes, underscores). */
export const STACK_NAME = /^[a-z0-9][a-z0-9_-]{0,62}$/;
export const SERVICE_NAME = /^[a-zA-Z0-9][a-zA-Z0-9_.-]{0,62}$/;

/** Labels Compose puts on what it makes; `docker compose` and docker-compose v1 read them. */
export const COMPOSE_LABELS = {
  project: 'com.docker.compose.project',
  service: 'com.docker.compose.service',
  containerNumber: 'com.docker.compose.container-number',
  configHash: 'com.docker.compose.config-hash',
  oneoff: 'com.docker.compose.oneoff',
  version: 'com.docker.compose.version',
  network: 'com.docker.compose.network',
  volume: 'com.docker.compose.volume',
  dependsOn: 'com.docker.compose.depends_on',
  workingDir: 'com.docker.compose.project.working_dir',
} as const;
/** dockfleet's own labels on a stack's containers. */
export const STACK_LABELS = {
  revision: 'dockfleet.stack.revision',
  snapshotVolumes: 'dockfleet.snapshot-volumes',
} as const;

const durationNs = z.number().int().nonnegative();
const stringMap = z.record(z.string(), z.string());

export const portMapping = z.strictObject({
  target: z.number().int().min(1).max(65535),
  /** null: the engine picks a host port. */
  published: z.number().int().min(1).max(65535).nullable(),
  hostIp: z.string(),
  protocol: z.enum(['tcp', 'udp', 'sctp']),
});

export const serviceMount = z.discriminatedUnion('type', [
  /** `source` is the Compose volume key (its engine name is in the project's volumes), or null for an anonymous one. */
  z.strictObject({ type: z.literal('volume'), source: z.string().nullable(), target: z.string(), readOnly: z.boolean() }),
  /** `source` is an absolute host path; the host's policy decides. */
  z.strictObject({ type: z.literal('bind'), source: z.string(), target: z.string(), readOnly: z.boolean() }),
  z.strictObject({ type: z.literal('tmpfs'), target: z.string(), sizeBytes: z.number().int().positive().nullable() }),
]);

export const healthcheck = z.union([
  z.strictObject({ disable: z.literal(true) }),
  z.strictObject({
    /** Docker's form: ["CMD", …], ["CMD-SHELL", "…"] or ["NONE"]. */
    test: z.array(z.string()).min(1),
    intervalNs: durationNs.nullable(),
    timeoutNs: durationNs.nullable(),
    retries: z.number().int().nonnegative().nullable(),
    startPeriodNs: durationNs.nullable(),
  }),
]);

export const stackService = z.strictObject({
  image: z.string().min(1),
  containerName: z.string().nullable(),
  command: z.array(z.string()).nullable(),
  entrypoint: z.array(z.string()).nullable(),
  /** Plain values, interpolated and merged with env_file contents. */
  environment: stringMap,
  /** Names of variables whose values come from the job's secret environment. */
  secretEnvironment: z.array(z.string()),
  ports: z.array(portMapping),
  mounts: z.array(serviceMount),
  /** Compose network key → aliases on it. Empty: the project's `default` network. */
  networks: z.record(z.string(), z.strictObject({ aliases: z.array(z.string()) })),
  labels: stringMap,
  restart: z.enum(['no', 'always', 'on-failure', 'unless-stopped']),
  healthcheck: healthcheck.nullable(),
  dependsOn: z.record(
    z.string(),
    z.strictObject({
      condition: z.enum(['service_started', 'service_healthy', 'service_completed_successfully']),
    }),
  ),
  user: z.string().nullable(),
  workingDir: z.string().nullable(),
  capAdd: z.array(z.string()),
  capDrop: z.array(z.string()),
  devices: z.array(z.strictObject({ source: z.string(), target: z.string(), permissions: z.string() })),
  resources: z.strictObject({
    memoryBytes: z.number().int().positive().nullable(),
    nanoCpus: z.number().int().positive().nullable(),
    pidsLimit: z.number().int().positive().nullable(),
  }),
  logging: z.strictObject({ driver: z.string(), options: stringMap }).nullable(),
  extraHosts: z.array(z.string()),
  /** Files given at deploy, mounted read-only at `target` (Compose: /run/secrets/NAME). */
  secrets: z.array(z.strictObject({ source: z.string(), target: z.string() })),
  configs: z.array(z.strictObject({ source: z.string(), target: z.string() })),
  stopGracePeriodNs: durationNs.nullable(),
});
export type StackService = z.infer<typeof stackService>;

export const stackProject = z.strictObject({
  name: z.string().regex(STACK_NAME),
  services: z.record(z.string().regex(SERVICE_NAME), stackService),
  /** Compose key → engine network. `name` is the engine's name (default: PROJECT_KEY). */
  networks: z.record(
    z.string(),
    z.strictObject({
      name: z.string(),
      external: z.boolean(),
      driver: z.string().nullable(),
      labels: stringMap,
      internal: z.boolean(),
    }),
  ),
  volumes: z.record(
    z.string(),
    z.strictObject({
      name: z.string(),
      external: z.boolean(),
      driver: z.string().nullable(),
      driverOpts: stringMap,
      labels: stringMap,
    }),
  ),
  /** Secret and config files given at deploy: key → base64 contents. Secret contents travel in the job's secret part. */
  configs: z.record(z.string(), z.string()),
  secretFiles: z.array(z.string()),
});
export type StackProject = z.infer<typeof stackProject>;

/** When a deploy counts as good: every service healthy (healthcheck) or running without a
 * restart for `stableMs`, all within `deadlineMs`. */
export const healthGate = z.strictObject({
  stableMs: z.number().int().min(0).max(3_600_000).default(10_000),
  deadlineMs: z.number().int().min(1_000).max(3_600_000).default(120_000),
});
export type HealthGate = z.infer<typeof healthGate>;

/** What a stack should be on one node: revision N of its project. */
export const stackRevision = z.strictObject({
  stack: z.string().regex(STACK_NAME),
  revision: z.number().int().positive(),
  project: stackProject,
  gate: healthGate,
  /** Digest of the project and the secret values' digests: equal digests, equal intent. */
  digest: z.string().regex(/^[0-9a-f]{64}$/),
});
export type StackRevision = z.infer<typeof stackRevision>;

/** Per-node stack state, as the agent reports it and the hub shows it. */
export const STACK_NODE_STATES = ['deploying', 'healthy', 'failed', 'rolled-back', 'drifted', 'removed'] as const;
export type StackNodeState = (typeof STACK_NODE_STATES)[number];

export const driftItem = z.strictObject({
  service: z.string().nullable(),
  container: z.string().nullable(),
  kind: z.enum(['missing', 'changed', 'added', 'stopped']),
  detail: z.string().max(500),
});
export type DriftItem = z.infer<typeof driftItem>;

/** The agent's report of every stack it holds (the hub subscribes on STACKS_STATUS_PATH). */
export const STACKS_STATUS_PATH = '/_dockfleet/v1/stacks';
export const stacksStatusMessage = z.strictObject({
  t: z.literal('stacks'),
  stacks: z.array(
    z.strictObject({
      stack: z.string(),
      revision: z.number().int().nonnegative(),
      state: z.enum(STACK_NODE_STATES),
      drift: z.array(driftItem),
      at: z.number(),
    }),
  ),
});
export type StacksStatusMessage = z.infer<typeof stacksStatusMessage>;
