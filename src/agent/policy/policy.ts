/**
 * The agent's local policy, applied to every Docker API request from the hub before it
 * reaches the engine. Use:
 *
 *   const policy = await AgentPolicy.load('/etc/dockfleet/policy.json'); // throws if malformed
 *   if (policy.needsBody(method, path)) → read at most MAX_INSPECTED_BODY bytes (more → refuse
 *     with 413), then policy.check(method, path, body) and forward exactly those bytes;
 *   else policy.check(method, path, null) and stream the body through.
 *
 * check() never throws; a refusal carries a reason meant to be shown to the Docker CLI as is.
 */
import { classify, normaliseApiPath, queryOf } from './classify-request.ts';
import { inspectCreate, inspectExecCreate, inspectVolumeCreate } from './inspect-body.ts';
import { DEFAULT_POLICY, SECTION_NAMES, loadPolicy, type Policy, type PolicyAllow, type SectionName } from './policy-file.ts';
import { describeResourceAllowances, inspectContainerUpdate } from './resource-controls.ts';
import { REFUSAL_PREFIX, quote, sayer, type Say } from './refusal-text.ts';
import { CLIENT_SESSION, remoteTarget, shownRemote } from './remote-context.ts';
import { parseStrictJson } from './strict-json.ts';

/** Bodies the policy inspects are buffered up to this size; larger ones are refused. */
export const MAX_INSPECTED_BODY = 1024 * 1024;

export type PolicyVerdict = { allowed: true } | { allowed: false; reason: string; section: string | null };

type BodyCheck = (body: unknown, allow: PolicyAllow, source: string) => string | null;

/** Operations whose JSON body is inspected, by engine operation id. */
const BODY_CHECKS: ReadonlyMap<string, BodyCheck> = new Map([
  ['ContainerCreate', inspectCreate],
  ['ContainerExec', inspectExecCreate],
  ['VolumeCreate', inspectVolumeCreate],
  ['ContainerUpdate', inspectContainerUpdate],
]);

/** What every client sends with `POST /containers/ID/start`: nothing (or an empty object). */
const EMPTY_START_BODY = /^\s*(\{\s*\}|null)?\s*$/;

/** Plugin operations that install code or change a plugin's mounts and devices. */
const PLUGIN_INSTALL_OPS: ReadonlySet<string> = new Set(['PluginPull', 'PluginCreate', 'PluginUpgrade', 'PluginSet']);

const SECTION_WORDS: Readonly<Record<SectionName, string>> = {
  ping: 'pinging the engine',
  version: 'reading the engine version',
  info: 'reading engine information',
  events: 'reading engine events',
  system: 'reading disk usage',
  containers: 'managing containers',
  exec: 'running commands in containers',
  archive: 'reading or writing container filesystems',
  images: 'managing images',
  imageExport: 'exporting images as tarballs',
  build: 'building images',
  session: 'BuildKit sessions',
  volumes: 'managing volumes',
  networks: 'managing networks',
  distribution: 'registry manifest lookups',
  auth: 'registry logins',
  plugins: 'managing plugins',
  swarm: 'managing the swarm',
  nodes: 'managing swarm nodes',
  services: 'managing swarm services',
  tasks: 'reading swarm tasks',
  secrets: 'managing swarm secrets',
  configs: 'managing swarm configs',
  volumeFiles: 'browsing or changing files inside volumes',
  ingress: 'the edge connecting to containers published by ingress labels',
};

/** The request as shown in a refusal: plain when it is plain, JSON-quoted otherwise. */
function describeRequest(method: string, path: string): string {
  const plain = (text: string, max: number): string => (/^[\x21-\x7e]+$/.test(text) && text.length <= max ? text : quote(text, max));
  return `${plain(method, 16)} ${plain(normaliseApiPath(path) ?? path.split('?')[0] ?? '', 200)}`;
}

const ALLOWED: PolicyVerdict = Object.freeze({ allowed: true });

export class AgentPolicy {
  readonly #policy: Policy;
  readonly #say: Say;

  constructor(policy: Policy) {
    this.#policy = policy;
    this.#say = sayer(policy.source);
  }

  /** Loads the file at `path` (null or missing → defaults); throws a one-line Error if malformed. */
  static async load(path: string | null): Promise<AgentPolicy> {
    return new AgentPolicy(await loadPolicy(path));
  }

  get policy(): Policy {
    return this.#policy;
  }

  /** One line for the agent's startup log. */
  summary(): string {
    const on = SECTION_NAMES.filter((name) => this.#policy.sections[name]);
    const { resources, ...flat } = this.#policy.allow;
    const allow = Object.entries(flat)
      .filter(([, value]) => value !== false && value !== null && !(Array.isArray(value) && value.length === 0))
      .map(([key, value]) => (Array.isArray(value) ? `${key}=${value.join(',')}` : key))
      .concat(describeResourceAllowances(resources, DEFAULT_POLICY.allow.resources));
    return `policy from ${this.#policy.source}: sections ${on.join(' ') || '(none)'}; allow ${allow.join(' ') || '(nothing extra)'}`;
  }

  /** Whether check() must see this request's body: true only when the body alone decides. */
  needsBody(method: string, path: string): boolean {
    const { section, op } = classify(method, path);
    return section !== null && this.#policy.sections[section] && (BODY_CHECKS.has(op) || op === 'ContainerStart');
  }

  check(method: string, path: string, body: Buffer | null): PolicyVerdict {
    const { section, op } = classify(method, path);
    const allow = this.#policy.allow;
    if (section === null) {
      return this.#refuse(null, `${describeRequest(method, path)}, not a Docker Engine API endpoint it recognises`, 'unknown endpoints are always refused');
    }
    if (!this.#policy.sections[section]) return this.#refuse(section, SECTION_WORDS[section], `sections.${section} is not true`);
    if (PLUGIN_INSTALL_OPS.has(op) && !allow.pluginInstall) {
      return this.#refuse(section, 'installing, upgrading or reconfiguring plugins', 'allow.pluginInstall is false');
    }
    if (
      op === 'ImageBuild' &&
      !allow.hostNamespaces &&
      queryOf(path)
        .getAll('networkmode')
        .some((m) => m.trim().toLowerCase() === 'host')
    ) {
      return this.#refuse(section, 'builds on the host network, networkmode=host', 'allow.hostNamespaces is false');
    }
    if (op === 'ContainerStart' && !EMPTY_START_BODY.test(body?.toString('utf8') ?? 'absent')) {
      // Engines that accept API versions before 1.24 apply a start body as the HostConfig.
      return this.#refuse(section, 'a container start with a request body (engines apply it as a HostConfig before API 1.24)', 'start bodies are never inspected');
    }
    if (op === 'ImageBuild') {
      const refusal = this.#checkRemotes(queryOf(path).getAll('remote'));
      if (refusal) return this.#refuse(section, refusal.what, refusal.rule);
    }
    const inspect = BODY_CHECKS.get(op);
    return inspect ? this.#checkBody(section, inspect, body) : ALLOWED;
  }

  /** The hub UI's volume file browser: not a Docker endpoint, a section of its own. */
  checkVolumeFiles(): PolicyVerdict {
    if (this.#policy.sections.volumeFiles) return ALLOWED;
    return this.#refuse('volumeFiles', SECTION_WORDS.volumeFiles, 'sections.volumeFiles is not true');
  }

  /** The edge's connections to containers (ingress labels): not a Docker endpoint, a section of its own. */
  checkIngress(): PolicyVerdict {
    if (this.#policy.sections.ingress) return ALLOWED;
    return this.#refuse('ingress', SECTION_WORDS.ingress, 'sections.ingress is not true');
  }

  /** The pure half of remote build contexts; the gate resolves the hosts (remote-context.ts). */
  #checkRemotes(remotes: readonly string[]): { what: string; rule: string } | null {
    for (const remote of remotes) {
      if (remote === '' || remote === CLIENT_SESSION) continue;
      if (!this.#policy.allow.remoteBuildContexts) {
        return { what: `a build whose context the engine fetches itself, remote=${shownRemote(remote)}`, rule: 'allow.remoteBuildContexts is false' };
      }
      const target = remoteTarget(remote);
      if (typeof target === 'string') return { what: target, rule: 'remote build contexts must name a plain http, https or git host' };
    }
    return null;
  }

  #checkBody(section: SectionName, inspect: BodyCheck, body: Buffer | null): PolicyVerdict {
    if (body === null) return this.#refuse(section, 'a request whose body was not given to the policy', 'such bodies must be inspected');
    if (body.length > MAX_INSPECTED_BODY) {
      return this.#refuse(section, `a request body over ${MAX_INSPECTED_BODY} bytes`, 'larger bodies cannot be inspected');
    }
    const parsed = parseStrictJson(body.toString('utf8'));
    if (!parsed.ok) return this.#refuse(section, `a malformed JSON body: ${parsed.error}`, 'bodies must be plain JSON to be inspected');
    const refusal = inspect(parsed.value, this.#policy.allow, this.#policy.source);
    return refusal === null ? ALLOWED : { allowed: false, reason: `${REFUSAL_PREFIX}${refusal}`, section };
  }

  #refuse(section: SectionName | null, what: string, rule: string): PolicyVerdict {
    return { allowed: false, reason: `${REFUSAL_PREFIX}${this.#say(what, rule)}`, section };
  }
}
