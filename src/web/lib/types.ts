/** Shapes of what the hub and the Docker Engine API answer (only the fields the UI reads). */
import type { NodeGrant } from '../../protocol/node-roles.ts';
import type { PolicySummary } from '../../protocol/policy-summary.ts';

export type NodeStatus = 'pending' | 'online' | 'offline' | 'revoked';
export type Role = 'admin' | 'operator' | 'viewer';

export interface NodeView {
  name: string;
  status: NodeStatus;
  lastSeen: string | null;
  engine: { version: string | null; state: 'up' | 'down' | 'unknown'; error?: string };
  host: { os: string; arch: string; cpus: number; memoryBytes: number; hostname: string } | null;
  counts: { containers: number; running: number; images: number; volumes: number; networks: number };
  /** Node labels (`dockfleet label NODE key=value`); stacks target them with a selector. */
  labels?: Record<string, string>;
  /** What the node's local policy allows, as its agent last reported it; null (or absent) until it has. */
  policy?: PolicySummary | null;
  /** The head of the host's own audit log, as its agent last reported it. */
  hostAudit?: { seq: number; hash: string } | null;
  /** The agent's version as it said when it connected; null while offline. */
  agentVersion?: string | null;
}

export interface Me {
  name: string;
  role: Role;
  /** Limited to granted nodes: nothing fleet-wide (stacks, jobs, alerts, audit, people); events and routes come filtered. */
  scoped?: boolean;
  /** Node grants (by name or label key/value); lib/access.ts combines them with `role` per node. */
  grants?: NodeGrant[];
}

export interface TokenInfo {
  id: string;
  name: string;
  createdAt: string | number;
}

export interface EnrollmentCreated {
  name: string;
  code: string;
  expiresAt: string;
}

export interface DockerPort {
  IP?: string;
  PrivatePort: number;
  PublicPort?: number;
  Type: string;
}

/** One entry of Docker's `GET /containers/json?all=1`. */
export interface DockerContainer {
  Id: string;
  Names?: string[];
  Image: string;
  ImageID?: string;
  Command?: string;
  Created: number;
  Ports?: DockerPort[];
  Labels?: Record<string, string> | null;
  State: string;
  Status: string;
  Mounts?: Array<{ Type: string; Name?: string; Source?: string; Destination: string }> | null;
  NetworkSettings?: { Networks?: Record<string, { NetworkID?: string; IPAddress?: string }> | null } | null;
}

/** A container with the node it lives on. */
export interface FleetContainer extends DockerContainer {
  node: string;
  name: string;
}

export interface DockerImage {
  Id: string;
  RepoTags?: string[] | null;
  RepoDigests?: string[] | null;
  Created: number;
  Size: number;
  Containers?: number;
  Labels?: Record<string, string> | null;
}

export interface DockerVolume {
  Name: string;
  Driver: string;
  Mountpoint: string;
  CreatedAt?: string;
  Labels?: Record<string, string> | null;
  Scope?: string;
  UsageData?: { Size: number; RefCount: number } | null;
}

export interface DockerNetwork {
  Name: string;
  Id: string;
  Created?: string;
  Driver: string;
  Scope: string;
  Internal?: boolean;
  Attachable?: boolean;
  IPAM?: { Config?: Array<{ Subnet?: string; Gateway?: string }> | null };
  Containers?: Record<string, { Name?: string; IPv4Address?: string }> | null;
  Labels?: Record<string, string> | null;
}

export interface FileEntry {
  name: string;
  type: 'file' | 'dir' | 'symlink' | 'other';
  size: number;
  mode: number | string;
  modifiedAt: string | number | null;
  linkTarget?: string;
}

export interface FileListing {
  path: string;
  entries: FileEntry[];
  /** The directory holds more entries than the agent lists at once. */
  truncated?: boolean;
}

export interface AuditRow {
  id: string | number;
  time: string;
  user: string;
  node: string | null;
  method: string;
  path: string;
  /** Null until the call has an outcome (still running, or interrupted by a hub restart). */
  status: number | null;
  startedAt: string;
  finishedAt: string | null;
  outcome: 'ok' | 'failed' | 'running' | 'interrupted';
}

/** The parts of `GET /containers/ID/json` the UI shows. */
export interface ContainerInspect {
  Id: string;
  Name: string;
  Created: string;
  Path?: string;
  Args?: string[];
  RestartCount?: number;
  State: {
    Status: string;
    Running: boolean;
    Paused?: boolean;
    Restarting?: boolean;
    OOMKilled?: boolean;
    Pid?: number;
    ExitCode?: number;
    Error?: string;
    StartedAt?: string;
    FinishedAt?: string;
    Health?: { Status: string; FailingStreak?: number };
  };
  Image: string;
  Config: {
    Hostname?: string;
    User?: string;
    Tty?: boolean;
    Env?: string[] | null;
    Cmd?: string[] | null;
    Entrypoint?: string[] | null;
    Image?: string;
    WorkingDir?: string;
    Labels?: Record<string, string> | null;
    ExposedPorts?: Record<string, unknown> | null;
  };
  HostConfig?: {
    RestartPolicy?: { Name?: string; MaximumRetryCount?: number };
    NetworkMode?: string;
    Privileged?: boolean;
    Memory?: number;
    NanoCpus?: number;
    AutoRemove?: boolean;
  };
  Mounts?: Array<{ Type: string; Name?: string; Source?: string; Destination: string; RW?: boolean; Mode?: string }>;
  NetworkSettings?: {
    Ports?: Record<string, Array<{ HostIp: string; HostPort: string }> | null> | null;
    Networks?: Record<string, { IPAddress?: string; Gateway?: string; MacAddress?: string; Aliases?: string[] | null }> | null;
  };
}

// ---------------------------------------------------------------------------------------------
// Stacks and jobs (src/protocol/stack-api.ts, src/hub/stacks/stack-views.ts, src/hub/jobs/job-views.ts)

export type StackNodeStatus = 'deploying' | 'healthy' | 'failed' | 'rolled-back' | 'drifted' | 'removed' | string;

export interface StackListItem {
  name: string;
  revision: number;
  nodes: Array<{ node: string; revision: number; status: StackNodeStatus }>;
}

export interface DriftItem {
  service: string | null;
  container: string | null;
  kind: string;
  detail: string;
}

export interface StackNodeView {
  node: string;
  revision: number;
  status: StackNodeStatus;
  drift: DriftItem[];
  updatedAt: string;
}

export interface RolloutView {
  id: string;
  stack: string;
  kind: 'deploy' | 'rollback' | 'remove';
  revision: number;
  nodes: string[];
  parallel: number;
  state: 'running' | 'succeeded' | 'failed';
  stoppedAtNode: string | null;
  error: string | null;
  jobs: string[];
  createdBy: string;
  createdAt: string;
  finishedAt: string | null;
}

export interface StackDetail {
  name: string;
  revision: number;
  createdAt: string | null;
  removedAt: string | null;
  drifted: boolean;
  nodes: StackNodeView[];
  rollouts: RolloutView[];
}

export type StackTargetSpec = { node: string } | { nodes: string[] } | { selector: { key: string; value: string } };

export interface RevisionSummary {
  revision: number;
  createdAt: string | null;
  createdBy: string;
  digest: string;
  target: StackTargetSpec;
  parallel: number;
  gate: { stableMs: number; deadlineMs: number };
  services: string[];
  env: Record<string, string>;
  secretEnv: string[];
  secretFiles: string[];
  files: string[];
}

export interface RevisionDetail extends RevisionSummary {
  compose: string;
}

export interface RolloutStarted {
  stack: string;
  revision: number;
  rollout: string;
  jobs: string[];
}

/** One problem of a Compose file, as the hub's deploy answers it (400) and the editor shows it. */
export interface ComposeIssue {
  path: string;
  line: number | null;
  message: string;
}

/** The hub's job states, from its own list: `awaiting-signature` until the operator's intent arrives (issue 13). */
export type JobState = import('../../protocol/jobs.ts').JobState;

export interface JobView {
  id: string;
  kind: import('../../protocol/jobs.ts').JobKind;
  node: string;
  stack: string;
  state: JobState;
  createdAt: string;
  finishedAt: string | null;
  revision: number | null;
  rolledBack: boolean;
  error: string | null;
  errorCode: string | null;
}

export interface JobStep {
  name: string;
  state: 'running' | 'succeeded' | 'failed' | 'skipped';
  startedAt: string | null;
  finishedAt: string | null;
}

export interface JobDetail extends JobView {
  createdBy: string;
  startedAt: string | null;
  expiresAt: string | null;
  attempts: number;
  deliveryError: string | null;
  steps: JobStep[];
  logs: Array<{ at: string | null; line: string }>;
  logsDropped: number;
  /** The agent's result once final; volume jobs carry their snapshot(s) and, for a new escrowed key, the sealed recovery code. */
  result?: { volume?: import('../../protocol/volume-backup.ts').VolumeJobOutput } | null;
}

/** GET /api/v1/alerts: incidents newest first, each with its deliveries per receiver. */
export interface AlertDelivery {
  receiver: string;
  receiverId: string;
  event: 'opened' | 'resolved';
  state: 'pending' | 'sent' | 'failed';
  attempts: number;
  nextAttemptAt: string | null;
  lastStatus: number | null;
  lastError: string | null;
  sentAt: string | null;
}

export interface AlertIncident {
  id: string;
  key: string;
  /** node-offline, container, stack-drift, job-failed (later: certificates, backups). */
  kind: string;
  severity: 'critical' | 'warning';
  state: 'open' | 'resolved';
  node: string | null;
  subject: string;
  title: string;
  detail: string;
  openedAt: string;
  updatedAt: string;
  resolvedAt: string | null;
  deliveries: AlertDelivery[];
}

export type AlertReceiverFormat = 'json' | 'ntfy' | 'slack';

/** GET /api/v1/alert-receivers (admin): the target as scheme and host only, header names only. */
export interface AlertReceiver {
  id: string;
  name: string;
  format: AlertReceiverFormat;
  target: string;
  headerNames: string[];
  enabled: boolean;
  createdAt: string;
  lastDelivery: { event: string; state: 'pending' | 'sent' | 'failed'; attempts: number; lastStatus: number | null; lastError: string | null; at: string | null } | null;
  /** The latest test send (kept by the hub), null until the first. */
  lastTest: { at: string; ok: boolean; status: number | null; error: string | null } | null;
}

/** POST /api/v1/alert-receivers/ID/test. */
export interface AlertTestOutcome {
  ok: boolean;
  status: number | null;
  error: string | null;
}
