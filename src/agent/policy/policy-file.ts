/**
 * The agent's local policy file: what the Docker API may do on this host. It lives on the
 * agent's host and is never settable from the hub. A missing file means the defaults; a file
 * that exists but is malformed stops the agent (fail closed).
 *
 * Sections (each Docker Engine API endpoint belongs to exactly one; unknown endpoints to none
 * and are always refused):
 *
 * | section      | endpoints                                                              | default |
 * |--------------|------------------------------------------------------------------------|---------|
 * | ping         | GET/HEAD /_ping                                                        | on      |
 * | version      | GET /version                                                           | on      |
 * | info         | GET /info                                                              | on      |
 * | events       | GET /events                                                            | on      |
 * | system       | GET /system/df                                                         | on      |
 * | containers   | /containers/* (list, create, inspect, logs, stats, top, changes, start,| on      |
 * |              | stop, kill, wait, attach, resize, update, rename, delete, prune),      |         |
 * |              | POST /commit                                                           |         |
 * | exec         | POST /containers/ID/exec, /exec/ID/{start,resize,json}                 | on      |
 * | archive      | GET/HEAD/PUT /containers/ID/archive, GET /containers/ID/export         | off     |
 * | images       | /images/* (list, pull/import, load, inspect, history, push, tag,       | on      |
 * |              | search, delete, prune) except exporting                                |         |
 * | imageExport  | GET /images/get, GET /images/NAME/get (image tarballs)                 | off     |
 * | build        | POST /build, /build/prune, /build/cancel (classic builder)             | on      |
 * | session      | POST /session, POST /grpc (BuildKit; raw BuildKit control)             | off     |
 * | volumes      | /volumes/*                                                             | on      |
 * | networks     | /networks/*                                                            | on      |
 * | distribution | GET /distribution/NAME/json (registry manifest lookup)                 | on      |
 * | auth         | POST /auth (registry login check)                                      | off     |
 * | plugins      | /plugins/* (install/upgrade/set also need allow.pluginInstall)         | off     |
 * | swarm        | /swarm/*                                                               | off     |
 * | nodes        | /nodes/*                                                               | off     |
 * | services     | /services/* (service specs are not inspected)                          | off     |
 * | tasks        | /tasks/*                                                               | off     |
 * | secrets      | /secrets/*                                                             | off     |
 * | configs      | /configs/*                                                             | off     |
 * | volumeFiles  | the hub UI's volume file browser (not a Docker endpoint): list, read,  | off     |
 * |              | upload, rename, delete files inside this host's volumes                |         |
 * | ingress      | the hub's edge connecting to containers on this host (not a Docker     | on      |
 * |              | endpoint): only to a running container's own address, and only to a    |         |
 * |              | port its own `dockfleet.ingress.*` labels publish                      |         |
 *
 * File shape (JSON, every key optional, unknown keys are errors):
 *   { "sections": { "containers": true, ... },
 *     "allow": { "privileged": false, "bindMounts": ["/srv"], "bindRoot": false,
 *                "dockerSocket": false, "hostNamespaces": false, "capabilities": ["SYS_PTRACE"],
 *                "devices": false, "pluginInstall": false } }
 * `sections` omitted → the defaults above. `sections` present → it is the complete list:
 * a section not set true is off (deny by default), so enabling `archive` means listing every
 * section wanted. `allow` keys default to false; `bindMounts` omitted or null means any host
 * path may be bind-mounted except `/` and the engine sockets (set it to restrict binds to
 * those directories; `[]` forbids bind mounts altogether).
 *
 * Host paths are judged where they lead on this host, not by their text: every bind source
 * (`Binds`, `Mounts` of type bind, local volumes with `o=bind`/`type=none`, at volume create,
 * when such a volume is mounted, through `VolumesFrom`, and again at container start/restart)
 * is resolved component by component, symlinks and `..` included. A path that leads into
 * /proc or /sys (magic links such as /proc/self/root cannot be judged by reading them) is
 * refused unless `bindMounts` lists a directory under /proc or /sys holding it. A path that
 * cannot be resolved (ELOOP, EACCES, …) is refused. The engine's socket and data root count
 * as the Docker socket (`dockerSocket`).
 *
 * Further `allow` keys, default false:
 *   containerWritableBindSources  bind sources strictly inside a directory that an existing
 *       container has mounted read-write, or inside the engine's data root. Refused by default
 *       because a container could swap a component of such a path for a symlink between the
 *       check and the engine's mount (the directory a container writes itself is fine).
 *   remoteBuildContexts  `POST /build?remote=…` (http/https URLs, git repositories): the engine
 *       fetches it. Even when allowed, never from loopback, link-local, unspecified or this
 *       host's own addresses, after resolving the name with DNS.
 *
 * `allow.resources`: controls that can starve the host or lift a container out of the limits
 * set on the engine's cgroup, checked in container create and update bodies
 * (resource-controls.ts):
 *
 * | key                 | allows                                                       | default |
 * |---------------------|--------------------------------------------------------------|---------|
 * | negativeOomScoreAdj | OomScoreAdj below 0 (the OOM killer takes the host's first)  | false   |
 * | oomKillDisable      | OomKillDisable true                                          | false   |
 * | unlimitedPids       | PidsLimit -1 on create; 0 or -1 on update (lifts a limit)    | false   |
 * | cgroupParents       | CgroupParent values allowed: exact, or paths under one       | []      |
 * | maxTmpfsBytes       | per container, every tmpfs (Tmpfs, Mounts, ShmSize) must have| 1 GiB   |
 * |                     | a size and all add up to at most this; null = no cap         |         |
 * | realtimeCpu         | CpuRealtimePeriod/Runtime, the ulimit rtprio                 | false   |
 * | unlimitedUlimits    | a ulimit of -1 (unlimited), a memlock above maxTmpfsBytes    | false   |
 *
 * A create that names no PidsLimit (the CLI sends 0) gets no limit, as the engine has no
 * default: unlimitedPids only stops a limit being lifted. CPU shares and I/O weights pass:
 * they weigh a container against its siblings under the engine's cgroup, not against the host.
 *
 * `signedIntent` (optional; issue 13): `{ "operators": ["ed25519:…"], "require": "mutations" | "all" }`.
 * Present, the agent runs work in scope only with a valid signature by one of these keys
 * (src/agent/intent/): "mutations" = every Docker call but GET/HEAD, every job, every volume-file
 * write; "all" = every Docker call, job and volume-file call. Every key must be in the form
 * `dockfleet operator-key show` prints; an empty list is an error (remove the section instead).
 *
 * `backups` (optional; issue 14): present, the hub's volume backup, restore and snapshot jobs
 * run here (src/agent/backup/); absent, they are refused. `{ "custody": "escrow" | "host-only" |
 * "hub-managed" (default escrow), "repository": "/srv/backups" or a restic URL (the default
 * repository), "repositoryPaths": ["/srv/backups"] (path repositories must resolve under one;
 * omitted = anywhere but the engine's data root and the system's own directories) }`.
 */
import { readFile } from 'node:fs/promises';
import { posix } from 'node:path';
import { z } from 'zod';
import { OPERATOR_KEY } from '../../protocol/intent.ts';

export const SECTION_NAMES = [
  'ping',
  'version',
  'info',
  'events',
  'system',
  'containers',
  'exec',
  'archive',
  'images',
  'imageExport',
  'build',
  'session',
  'volumes',
  'networks',
  'distribution',
  'auth',
  'plugins',
  'swarm',
  'nodes',
  'services',
  'tasks',
  'secrets',
  'configs',
  'volumeFiles',
  'ingress',
] as const;

export type SectionName = (typeof SECTION_NAMES)[number];

const DEFAULT_ON: ReadonlySet<SectionName> = new Set<SectionName>([
  'ping',
  'version',
  'info',
  'events',
  'system',
  'containers',
  'exec',
  'images',
  'build',
  'volumes',
  'networks',
  'distribution',
  'ingress',
]);

const absolutePath = z
  .string()
  .refine((p) => p.startsWith('/') && !p.includes('\0'), 'must be an absolute host path')
  .transform(normaliseDir);

const capability = z
  .string()
  .regex(/^(cap_)?[a-z_]+$/i, 'must be a capability name like "SYS_PTRACE"')
  .transform((c) => c.toUpperCase().replace(/^CAP_/, ''));

const cgroupParent = z
  .string()
  .refine((p) => p !== '' && !p.includes('\0') && !p.split('/').some((part) => part === '..' || part === '.'), 'must be a cgroup path or systemd slice, without "." or ".."')
  .transform((p) => (p.startsWith('/') ? normaliseDir(p) : p));

const allowSchema = z.strictObject({
  privileged: z.boolean().default(false),
  bindMounts: z.array(absolutePath).nullable().default(null),
  bindRoot: z.boolean().default(false),
  dockerSocket: z.boolean().default(false),
  hostNamespaces: z.boolean().default(false),
  capabilities: z.array(capability).default([]),
  devices: z.boolean().default(false),
  pluginInstall: z.boolean().default(false),
  containerWritableBindSources: z.boolean().default(false),
  remoteBuildContexts: z.boolean().default(false),
  resources: z
    .strictObject({
      negativeOomScoreAdj: z.boolean().default(false),
      oomKillDisable: z.boolean().default(false),
      unlimitedPids: z.boolean().default(false),
      cgroupParents: z.array(cgroupParent).default([]),
      maxTmpfsBytes: z
        .number()
        .int()
        .positive()
        .nullable()
        .default(1024 ** 3),
      realtimeCpu: z.boolean().default(false),
      unlimitedUlimits: z.boolean().default(false),
    })
    .prefault({}),
});

/** `signedIntent`: which operator keys this host obeys, and for what (issue 13). */
const signedIntentSchema = z.strictObject({
  operators: z
    .array(z.string().regex(OPERATOR_KEY, 'must be an operator key as `dockfleet operator-key show` prints it (ed25519: and 43 base64url characters)'))
    .min(1, 'must list at least one operator key (remove signedIntent to stop requiring signatures)')
    .max(1000, 'may list at most 1000 operator keys'),
  require: z.enum(['mutations', 'all'], { error: 'must be "mutations" or "all"' }),
});

/** `backups`: this host runs volume backup jobs, with its key custody and where repositories may be. */
const backupsSchema = z.strictObject({
  custody: z.enum(['host-only', 'escrow', 'hub-managed'], { error: 'must be "host-only", "escrow" or "hub-managed"' }).default('escrow'),
  repository: z.string().min(2).max(4_096).nullable().default(null),
  repositoryPaths: z.array(absolutePath).nullable().default(null),
});
export interface BackupsPolicy {
  readonly custody: 'host-only' | 'escrow' | 'hub-managed';
  readonly repository: string | null;
  readonly repositoryPaths: readonly string[] | null;
}

const fileSchema = z.strictObject({
  sections: z.partialRecord(z.enum(SECTION_NAMES), z.boolean()).optional(),
  allow: allowSchema.optional(),
  signedIntent: signedIntentSchema.optional(),
  backups: backupsSchema.optional(),
});

/** On a host that asks for signatures: the keys it obeys, and whether reads need one too. */
export interface SignedIntentPolicy {
  /** Operator keys in policy-file form, without duplicates. */
  readonly operators: readonly string[];
  /** "mutations": every Docker call but GET/HEAD, every job and volume-file write; "all": every call. */
  readonly require: 'mutations' | 'all';
}

export interface PolicyAllow {
  readonly privileged: boolean;
  /** Normalised absolute directories; null = any host path except `/` and engine sockets. */
  readonly bindMounts: readonly string[] | null;
  readonly bindRoot: boolean;
  readonly dockerSocket: boolean;
  readonly hostNamespaces: boolean;
  /** Upper case, without the CAP_ prefix; "ALL" allows every capability. */
  readonly capabilities: readonly string[];
  readonly devices: boolean;
  readonly pluginInstall: boolean;
  /** Bind sources inside a directory that a container can write, or inside the engine's data root. */
  readonly containerWritableBindSources: boolean;
  /** `POST /build?remote=…`: the engine fetches a URL or clones a repository (never from this host itself). */
  readonly remoteBuildContexts: boolean;
  readonly resources: ResourceAllow;
}

/** `allow.resources`: controls that can starve the host (see the table above). */
export interface ResourceAllow {
  readonly negativeOomScoreAdj: boolean;
  readonly oomKillDisable: boolean;
  readonly unlimitedPids: boolean;
  /** Cgroup parents a container may name: exactly, or (for paths) anything under them. */
  readonly cgroupParents: readonly string[];
  /** Per container: every tmpfs and /dev/shm must have a size, adding up to at most this; null = no cap. */
  readonly maxTmpfsBytes: number | null;
  readonly realtimeCpu: boolean;
  readonly unlimitedUlimits: boolean;
}

export interface Policy {
  readonly sections: Readonly<Record<SectionName, boolean>>;
  readonly allow: PolicyAllow;
  /** Present when this host runs only signed work (src/agent/intent/); null otherwise. */
  readonly signedIntent: SignedIntentPolicy | null;
  /** Present when this host runs volume backup jobs (issue 14); null otherwise. */
  readonly backups?: BackupsPolicy | null;
  /** Where the policy came from, for refusal messages: a file path or "the default policy". */
  readonly source: string;
}

function sectionsFrom(set: ReadonlySet<SectionName> | ((name: SectionName) => boolean)): Record<SectionName, boolean> {
  const on = typeof set === 'function' ? set : (name: SectionName) => set.has(name);
  return Object.fromEntries(SECTION_NAMES.map((name) => [name, on(name)])) as Record<SectionName, boolean>;
}

function deepFreeze(policy: Policy): Policy {
  Object.freeze(policy.sections);
  Object.freeze(policy.allow.bindMounts);
  Object.freeze(policy.allow.capabilities);
  Object.freeze(policy.allow.resources.cgroupParents);
  Object.freeze(policy.allow.resources);
  Object.freeze(policy.allow);
  if (policy.signedIntent) {
    Object.freeze(policy.signedIntent.operators);
    Object.freeze(policy.signedIntent);
  }
  return Object.freeze(policy);
}

export const DEFAULT_POLICY: Policy = deepFreeze({
  sections: sectionsFrom(DEFAULT_ON),
  allow: allowSchema.parse({}),
  signedIntent: null,
  source: 'the default policy',
});

/** `/srv//data/./x/` → `/srv/data/x`; `//`, `/..` → `/`. */
export function normaliseDir(path: string): string {
  const normal = posix.normalize(path);
  return normal.length > 1 ? normal.replace(/\/+$/, '') : normal;
}

function describePath(path: readonly PropertyKey[]): string {
  if (path.length === 0) return 'the top level';
  return path.map((key, i) => (typeof key === 'number' ? `[${key}]` : `${i === 0 ? '' : '.'}${String(key)}`)).join('');
}

/** Parses policy file text; throws a one-line Error naming `path` and the bad field. */
export function parsePolicy(text: string, path: string): Policy {
  let raw: unknown;
  try {
    raw = JSON.parse(text) as unknown;
  } catch (err) {
    throw new Error(`policy file ${path} is not valid JSON: ${(err as Error).message.split('\n')[0]}`);
  }
  const parsed = fileSchema.safeParse(raw);
  if (!parsed.success) {
    const issue = parsed.error.issues[0];
    const where = issue ? describePath(issue.path) : 'the top level';
    throw new Error(`policy file ${path} is invalid at ${where}: ${issue?.message ?? 'unknown problem'}`);
  }
  const { sections, allow, signedIntent, backups } = parsed.data;
  return deepFreeze({
    sections: sections === undefined ? sectionsFrom(DEFAULT_ON) : sectionsFrom((name) => sections[name] === true),
    allow: allow ?? allowSchema.parse({}),
    signedIntent: signedIntent ? { operators: [...new Set(signedIntent.operators)], require: signedIntent.require } : null,
    backups: backups ? Object.freeze({ ...backups, repositoryPaths: backups.repositoryPaths ? Object.freeze([...backups.repositoryPaths]) : null }) : null,
    source: path,
  });
}

/** Reads the policy at `path`; null or a missing file gives the defaults. */
export async function loadPolicy(path: string | null): Promise<Policy> {
  if (path === null) return DEFAULT_POLICY;
  let text: string;
  try {
    text = await readFile(path, 'utf8');
  } catch (err) {
    const code = (err as NodeJS.ErrnoException).code;
    if (code === 'ENOENT') return deepFreeze({ ...DEFAULT_POLICY, source: `the default policy, as ${path} does not exist` });
    throw new Error(`cannot read policy file ${path}: ${code ?? (err as Error).message}`);
  }
  return parsePolicy(text, path);
}
