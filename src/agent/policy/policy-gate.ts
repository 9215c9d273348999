/**
 * The agent's gate for Docker calls: the pure policy check (policy.ts), then a host pass
 * for the calls whose meaning depends on this host — where bind sources really lead
 * (container create, volume create, container start and restart, which judge every mount of
 * the container again, narrowing a path swapped after create down to the start call itself)
 * and where a remote build context would be fetched from. Use:
 *
 *   const gate = new PolicyGate(policy, engineHostView(engine));
 *   const verdict = await gate.check(method, path, body);   // never throws
 *
 * What the engine cannot answer, or a path the agent cannot resolve, is refused.
 */
import { classify, normaliseApiPath, queryOf } from './classify-request.ts';
import { createBodyRefs, volumeBindDevice, type HostRef } from './host-references.ts';
import { HostPathJudge } from './host-path-judge.ts';
import type { HostView } from './host-view.ts';
import { isRecord, objectField, MALFORMED } from './go-fields.ts';
import type { AgentPolicy, PolicyVerdict } from './policy.ts';
import { REFUSAL_PREFIX, quote, sayer, type Say } from './refusal-text.ts';
import { CLIENT_SESSION, checkRemoteAddresses, remoteTarget } from './remote-context.ts';
import { parseStrictJson } from './strict-json.ts';

const ALLOWED: PolicyVerdict = Object.freeze({ allowed: true });

export class PolicyGate {
  readonly #policy: AgentPolicy;
  readonly #view: HostView;
  readonly #say: Say;

  constructor(policy: AgentPolicy, view: HostView) {
    this.#policy = policy;
    this.#view = view;
    this.#say = sayer(policy.policy.source);
  }

  needsBody(method: string, path: string): boolean {
    return this.#policy.needsBody(method, path);
  }

  async check(method: string, path: string, body: Buffer | null): Promise<PolicyVerdict> {
    const verdict = this.#policy.check(method, path, body);
    if (!verdict.allowed) return verdict;
    const { section, op } = classify(method, path);
    let refusal: string | null;
    try {
      refusal = await this.#hostPass(op, path, body);
    } catch (err) {
      const what = `${method} ${quote(normaliseApiPath(path) ?? path, 200)}, as this host could not be checked (${(err as Error).message})`;
      refusal = this.#say(what, 'the policy refuses what it cannot check');
    }
    return refusal === null ? ALLOWED : { allowed: false, reason: `${REFUSAL_PREFIX}${refusal}`, section };
  }

  async #hostPass(op: string, path: string, body: Buffer | null): Promise<string | null> {
    const judge = (): HostPathJudge => new HostPathJudge(this.#view, this.#policy.policy.allow, this.#say);
    switch (op) {
      case 'ContainerCreate':
        return judge().judge(createBodyRefs(parsed(body)));
      case 'VolumeCreate':
        return judge().judge(volumeCreateRefs(parsed(body)));
      case 'ContainerStart':
      case 'ContainerRestart': {
        const id = normaliseApiPath(path)?.split('/')[2];
        return id ? judge().judgeContainer(id) : null;
      }
      case 'ImageBuild':
        return this.#checkRemotes(queryOf(path).getAll('remote'));
      default:
        return null;
    }
  }

  async #checkRemotes(remotes: readonly string[]): Promise<string | null> {
    for (const remote of remotes) {
      if (remote === '' || remote === CLIENT_SESSION) continue;
      const target = remoteTarget(remote);
      // The pure pass refused every remote unless allowed, and every target it cannot read.
      if (typeof target === 'string') return this.#say(target, 'remote build contexts must name a plain http, https or git host');
      const refusal = await checkRemoteAddresses(target);
      if (refusal) return this.#say(refusal, "the engine never fetches from this host's own or link-local addresses");
    }
    return null;
  }
}

/** The body the pure pass already parsed and accepted. */
function parsed(body: Buffer | null): unknown {
  if (body === null) return null;
  const result = parseStrictJson(body.toString('utf8'));
  return result.ok ? result.value : null;
}

function volumeCreateRefs(body: unknown): HostRef[] {
  if (!isRecord(body)) return [];
  const opts = objectField(body, 'DriverOpts');
  const device = opts && opts !== MALFORMED ? volumeBindDevice(opts) : null;
  return device ? [{ kind: 'bind', source: device, where: '' }] : [];
}
