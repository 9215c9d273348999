/**
 * The policy's host pass for paths: judges host references (host-references.ts) by where
 * they lead on this host. Each bind source is resolved twice — as the engine cleans it
 * (path.Clean, then the kernel's walk) and purely physically — and refused if either is
 * refused. Named volumes and VolumesFrom containers are inspected through the engine, so a
 * volume or container made outside the agent counts too. One judge serves one request: what
 * it learns about the engine (its data root, which directories containers can write) is
 * fetched once, when the first host path needs it.
 */
import { MALFORMED, field, isRecord, stringField, type JsonObject } from './go-fields.ts';
import { containerRefs, volumeBindDevice, type HostRef } from './host-references.ts';
import { judgeResolvedSource, type HostFacts } from './host-paths.ts';
import type { HostView } from './host-view.ts';
import { normaliseDir, type PolicyAllow } from './policy-file.ts';
import { quote, type Say } from './refusal-text.ts';
import { checkVolumeDriverOptions } from './volume-driver-options.ts';

export class HostPathJudge {
  readonly #view: HostView;
  readonly #allow: PolicyAllow;
  readonly #say: Say;
  #facts: Promise<HostFacts> | null = null;

  constructor(view: HostView, allow: PolicyAllow, say: Say) {
    this.#view = view;
    this.#allow = allow;
    this.#say = say;
  }

  /** The first refusal among `refs`, or null. Throws HostViewError when the engine cannot answer. */
  async judge(refs: readonly HostRef[]): Promise<string | null> {
    for (const ref of refs) {
      const refusal = await this.#judgeOne(ref);
      if (refusal) return refusal;
    }
    return null;
  }

  /** POST /containers/ID/start and /restart: every mount of the container, judged again. */
  async judgeContainer(ref: string): Promise<string | null> {
    const inspected = await this.#view.inspectContainer(ref);
    return inspected === null ? null : this.judge(containerRefs(inspected, quote(ref, 80)));
  }

  async #judgeOne(ref: HostRef): Promise<string | null> {
    switch (ref.kind) {
      case 'bind':
        return this.#judgeSource(ref.source, ref.where);
      case 'volume': {
        const volume = await this.#view.inspectVolume(ref.name);
        const options = volume === null ? null : field(volume, 'Options');
        if (!isRecord(options)) return null;
        const where = `volume ${quote(ref.name, 80)}${ref.where ? ` (${ref.where})` : ''}`;
        const pure = checkVolumeDriverOptions(options, this.#allow, this.#sayThrough(where), `the options of ${where}`);
        if (pure) return pure;
        const device = volumeBindDevice(options);
        return device === null ? null : this.#judgeSource(device, where);
      }
      case 'container': {
        const inspected = await this.#view.inspectContainer(ref.ref);
        if (inspected === null) return null;
        const name = quote(ref.ref, 80);
        const refs = containerRefs(inspected, name).map((inner) => ({ ...inner, where: `${ref.where} container ${name}` }));
        return this.judge(refs);
      }
    }
  }

  async #judgeSource(source: string, where: string): Promise<string | null> {
    const say = this.#sayThrough(where);
    const facts = await this.#hostFacts();
    const spellings = source.startsWith('/') ? [...new Set([normaliseDir(source), source])] : [source];
    for (const spelled of spellings) {
      const refusal = judgeResolvedSource(source, await this.#view.resolvePath(spelled), this.#allow, say, facts);
      if (refusal) return refusal;
    }
    return null;
  }

  #sayThrough(where: string): Say {
    return where === '' ? this.#say : (what, rule) => this.#say(`${what}, through ${where}`, rule);
  }

  #hostFacts(): Promise<HostFacts> {
    this.#facts ??= gatherFacts(this.#view);
    return this.#facts;
  }
}

/** Where `path` physically leads, or its cleaned text when it cannot be resolved. */
async function physical(view: HostView, path: string): Promise<string> {
  const resolved = await view.resolvePath(path);
  return resolved.kind === 'unresolvable' ? normaliseDir(path) : resolved.path;
}

function containerName(container: JsonObject): string {
  const names = field(container, 'Names');
  const first = Array.isArray(names) && typeof names[0] === 'string' ? names[0].replace(/^\//, '') : null;
  return first ?? String(field(container, 'Id') ?? '?').slice(0, 12);
}

async function gatherFacts(view: HostView): Promise<HostFacts> {
  const [info, containers, volumes] = await Promise.all([view.engineInfo(), view.listContainers(), view.listVolumes()]);
  const bindDevices = new Map<string, string>();
  for (const volume of volumes) {
    const name = stringField(volume, 'Name');
    const options = field(volume, 'Options');
    const device = isRecord(options) ? volumeBindDevice(options) : null;
    if (name !== MALFORMED && device) bindDevices.set(name, device);
  }
  const writable: Array<Promise<{ dir: string; by: string }>> = [];
  for (const container of containers) {
    const mounts = field(container, 'Mounts');
    for (const mount of Array.isArray(mounts) ? mounts.filter(isRecord) : []) {
      if (field(mount, 'RW') === false) continue;
      const type = String(field(mount, 'Type') ?? '').toLowerCase();
      const source = type === 'bind' ? field(mount, 'Source') : type === 'volume' ? bindDevices.get(String(field(mount, 'Name'))) : undefined;
      if (typeof source !== 'string' || !source.startsWith('/')) continue;
      const by = containerName(container);
      writable.push(physical(view, source).then((dir) => ({ dir, by })));
    }
  }
  const root = field(info, 'DockerRootDir');
  return {
    engineRoot: typeof root === 'string' && root.startsWith('/') ? await physical(view, root) : null,
    engineSockets: await Promise.all(view.engineSockets().map((sock) => physical(view, sock))),
    writable: await Promise.all(writable),
  };
}
