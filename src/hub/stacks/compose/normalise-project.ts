/**
 * The top level of a Compose file made into a StackProject's networks, volumes, configs and
 * secret files. Engine names follow Compose: PROJECT_KEY unless `name:` or `external` says
 * otherwise; the `default` network exists when a service uses it, as Compose makes it.
 */
import type { StackProject } from '../../../protocol/stacks.ts';
import type { ComposeProblem } from './compose-path.ts';
import { scalarText, stringMap, ValueError } from './compose-values.ts';
import { decodeFile } from './deploy-files.ts';
import type { Variables } from './interpolate.ts';

type Raw = Record<string, unknown>;

export interface TopLevel {
  networks: StackProject['networks'];
  volumes: StackProject['volumes'];
  configs: StackProject['configs'];
  /** Secret key → base64 contents (kept out of the project). */
  secretFiles: Record<string, string>;
}

function entries(value: unknown): Array<[string, Raw]> {
  return Object.entries((value ?? {}) as Record<string, Raw | null>).map(([key, item]) => [key, item ?? {}]);
}

/** `external: true`, or the legacy `external: {name}` form. */
function externalName(raw: Raw): { external: boolean; name: string | null } {
  const external = raw.external;
  if (external !== null && typeof external === 'object') {
    const name = (external as Raw).name;
    return { external: true, name: name === undefined ? null : scalarText(name) };
  }
  return { external: external === true || external === 'true', name: null };
}

export function normaliseTopLevel(stack: string, root: Raw, vars: Variables, files: Record<string, string>, problems: ComposeProblem[]): TopLevel {
  const out: TopLevel = { networks: {}, volumes: {}, configs: {}, secretFiles: {} };
  const engineName = (key: string, raw: Raw): { name: string; external: boolean } => {
    const ext = externalName(raw);
    const given = ext.name ?? (raw.name === undefined ? null : scalarText(raw.name));
    return { name: given ?? (ext.external ? key : `${stack}_${key}`), external: ext.external };
  };

  for (const [key, raw] of entries(root.networks)) {
    out.networks[key] = {
      ...engineName(key, raw),
      driver: raw.driver === undefined ? null : scalarText(raw.driver),
      labels: stringMap(raw.labels),
      internal: raw.internal === true,
    };
  }
  for (const [key, raw] of entries(root.volumes)) {
    out.volumes[key] = {
      ...engineName(key, raw),
      driver: raw.driver === undefined ? null : scalarText(raw.driver),
      driverOpts: stringMap(raw.driver_opts),
      labels: stringMap(raw.labels),
    };
  }

  const contents = (kind: 'secrets' | 'configs', key: string, raw: Raw): string | null => {
    try {
      if (raw.file !== undefined) return (decodeFile(files, scalarText(raw.file), true) as Buffer).toString('base64');
      if (raw.content !== undefined) return Buffer.from(scalarText(raw.content), 'utf8').toString('base64');
      if (raw.environment !== undefined) {
        const name = scalarText(raw.environment);
        const found = vars.get(name);
        if (found === undefined) throw new ValueError(`variable ${name} is not set`);
        if (found.secret && kind === 'configs') throw new ValueError(`variable ${name} is secret: use a secret, not a config`);
        return Buffer.from(found.value, 'utf8').toString('base64');
      }
      throw new ValueError(`give \`file\`, \`environment\`${kind === 'configs' ? ' or `content`' : ''}`);
    } catch (err) {
      if (!(err instanceof ValueError)) throw err;
      problems.push({ path: [kind, key], message: err.message });
      return null;
    }
  };
  for (const [key, raw] of entries(root.secrets)) {
    const value = contents('secrets', key, raw);
    if (value !== null) out.secretFiles[key] = value;
  }
  for (const [key, raw] of entries(root.configs)) {
    const value = contents('configs', key, raw);
    if (value !== null) out.configs[key] = value;
  }
  return out;
}

/** Compose's implicit `default` network, added when a service is on it and the file did not declare it. */
export function addDefaultNetwork(stack: string, project: Pick<StackProject, 'networks' | 'services'>): void {
  if (project.networks.default !== undefined) return;
  const used = Object.values(project.services).some((service) => service.networks.default !== undefined);
  if (used) project.networks.default = { name: `${stack}_default`, external: false, driver: null, labels: {}, internal: false };
}
