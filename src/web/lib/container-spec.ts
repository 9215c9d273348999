/**
 * The run / edit form as plain text fields, and the Engine API create body made from it (pure
 * functions, unit-tested in Node). Going the other way, a container's inspect becomes the form
 * (duplicate, edit), and a recreate body keeps everything the form does not show: its volumes
 * (named and bind, and anonymous ones re-attached from the old container's mounts), entrypoint,
 * working dir, user and the rest of its HostConfig.
 */

export type RestartName = 'no' | 'always' | 'unless-stopped' | 'on-failure';

export interface RunSpec {
  image: string;
  name: string;
  /** Shell-like words: `sh -c "echo hi"`. Empty: the image's command. */
  command: string;
  /** One KEY=value a line. */
  env: string;
  /** One a line: `8080:80`, `127.0.0.1:8080:80/udp`, `80` (any free host port). */
  ports: string;
  /** One a line: `data:/var/lib/data`, `/srv/site:/usr/share/html:ro`. */
  volumes: string;
  /** Empty: the engine's default (bridge). */
  network: string;
  restart: RestartName;
  /** One key=value a line. */
  labels: string;
  /** Megabytes; empty: no limit. */
  memoryMb: string;
  cpus: string;
  pids: string;
}

export const EMPTY_SPEC: RunSpec = {
  image: '', name: '', command: '', env: '', ports: '', volumes: '', network: '', restart: 'no', labels: '', memoryMb: '', cpus: '', pids: '',
};

export type CreateBody = Record<string, unknown> & { Image: string; HostConfig: Record<string, unknown> };

const lines = (s: string): Array<[number, string]> =>
  s.split('\n').map((l, i): [number, string] => [i + 1, l.trim()]).filter(([, l]) => l !== '' && !l.startsWith('#'));

/** Splits a command line into words: spaces separate, quotes group, backslash escapes. */
export function splitWords(s: string): string[] {
  const out: string[] = [];
  let word = '';
  let quote: '"' | "'" | null = null;
  let has = false;
  for (let i = 0; i < s.length; i++) {
    const ch = s[i]!;
    if (quote) {
      if (ch === quote) quote = null;
      else if (ch === '\\' && quote === '"' && i + 1 < s.length) word += s[++i];
      else word += ch;
    } else if (ch === '"' || ch === "'") { quote = ch; has = true; }
    else if (ch === '\\' && i + 1 < s.length) { word += s[++i]; has = true; }
    else if (/\s/.test(ch)) { if (has || word) out.push(word); word = ''; has = false; }
    else word += ch;
  }
  if (quote) throw new Error(`unclosed ${quote} quote`);
  if (has || word) out.push(word);
  return out;
}

/** Words back into a line that splitWords reads the same. */
export function joinWords(words: readonly string[]): string {
  return words.map((w) => (w !== '' && /^[\w@%+=:,./-]+$/.test(w) ? w : `"${w.replace(/(["\\])/g, '\\$1')}"`)).join(' ');
}

interface PortRule { hostIp: string; hostPort: string; containerPort: string }

function parsePort(line: string): PortRule | null {
  const m = /^(?:(?:(\[[0-9a-fA-F:]+\]|[\d.]+):)?(\d{1,5})?:)?(\d{1,5})(\/(?:tcp|udp|sctp))?$/.exec(line);
  if (!m) return null;
  const [, ip = '', host = '', ctr, proto = '/tcp'] = m;
  if (Number(ctr) < 1 || Number(ctr) > 65535 || (host && (Number(host) < 1 || Number(host) > 65535))) return null;
  return { hostIp: ip.replace(/^\[|\]$/g, ''), hostPort: host, containerPort: `${ctr}${proto}` };
}

export interface SpecResult {
  body: CreateBody | null;
  /** Field → message, for the form (field names as in RunSpec). */
  errors: Partial<Record<keyof RunSpec, string>>;
}

/** The form into an Engine API `POST /containers/create` body, or what is wrong, per field. */
export function specToCreateBody(spec: RunSpec): SpecResult {
  const errors: SpecResult['errors'] = {};
  const image = spec.image.trim();
  if (!image) errors.image = 'Give an image, e.g. nginx:1.27 or registry.example.com/app:2.';
  else if (/\s/.test(image)) errors.image = 'An image reference has no spaces.';
  if (spec.name.trim() && !/^\/?[a-zA-Z0-9][a-zA-Z0-9_.-]*$/.test(spec.name.trim())) {
    errors.name = 'Letters, digits, and _ . - only, starting with a letter or digit.';
  }
  let cmd: string[] = [];
  try { cmd = splitWords(spec.command); } catch (e) { errors.command = (e as Error).message; }
  const env: string[] = [];
  for (const [n, l] of lines(spec.env)) {
    if (!/^[^=\s][^=]*=/.test(l)) { errors.env = `Line ${n}: write KEY=value.`; break; }
    env.push(l);
  }
  const labels: Record<string, string> = {};
  for (const [n, l] of lines(spec.labels)) {
    const i = l.indexOf('=');
    if (i <= 0) { errors.labels = `Line ${n}: write key=value.`; break; }
    labels[l.slice(0, i).trim()] = l.slice(i + 1).trim();
  }
  const exposed: Record<string, object> = {};
  const bindings: Record<string, Array<{ HostIp: string; HostPort: string }>> = {};
  for (const [n, l] of lines(spec.ports)) {
    const p = parsePort(l);
    if (!p) { errors.ports = `Line ${n}: write HOST:CONTAINER such as 8080:80, or IP:HOST:CONTAINER/udp.`; break; }
    exposed[p.containerPort] = {};
    (bindings[p.containerPort] ??= []).push({ HostIp: p.hostIp, HostPort: p.hostPort });
  }
  const binds: string[] = [];
  for (const [n, l] of lines(spec.volumes)) {
    const parts = l.split(':');
    const ok = parts.length >= 2 && parts.length <= 3 && parts[0] !== '' && parts[1]!.startsWith('/') && (parts.length === 2 || /^(ro|rw|z|Z|ro,z|ro,Z|rw,z|rw,Z)$/.test(parts[2]!));
    if (!ok) { errors.volumes = `Line ${n}: write VOLUME:/path or /host/path:/path, with :ro for read-only.`; break; }
    binds.push(l);
  }
  const num = (field: 'memoryMb' | 'cpus' | 'pids', v: string, integer: boolean): number | null => {
    if (!v.trim()) return null;
    const x = Number(v);
    if (!Number.isFinite(x) || x <= 0 || (integer && !Number.isInteger(x))) { errors[field] = integer ? 'A whole number above 0, or empty.' : 'A number above 0, or empty.'; return null; }
    return x;
  };
  const memory = num('memoryMb', spec.memoryMb, false);
  const cpus = num('cpus', spec.cpus, false);
  const pids = num('pids', spec.pids, true);
  if (Object.keys(errors).length) return { body: null, errors };
  const hostConfig: Record<string, unknown> = {
    RestartPolicy: { Name: spec.restart === 'no' ? '' : spec.restart, ...(spec.restart === 'on-failure' ? { MaximumRetryCount: 0 } : {}) },
    PortBindings: bindings,
    Binds: binds,
  };
  if (memory !== null) hostConfig.Memory = Math.round(memory * 1024 * 1024);
  if (cpus !== null) hostConfig.NanoCpus = Math.round(cpus * 1e9);
  if (pids !== null) hostConfig.PidsLimit = pids;
  if (spec.network.trim()) hostConfig.NetworkMode = spec.network.trim();
  const body: CreateBody = { Image: image, Env: env, Labels: labels, ExposedPorts: exposed, HostConfig: hostConfig };
  if (cmd.length) body.Cmd = cmd;
  return { body, errors };
}

/** The inspect fields this module reads (a subset of Docker's). */
export interface InspectForSpec {
  Name: string;
  Config: { Image?: string; Cmd?: string[] | null; Env?: string[] | null; Labels?: Record<string, string> | null; [k: string]: unknown };
  HostConfig?: {
    RestartPolicy?: { Name?: string }; PortBindings?: Record<string, Array<{ HostIp?: string; HostPort?: string }> | null> | null;
    Binds?: string[] | null; NetworkMode?: string; Memory?: number; NanoCpus?: number; PidsLimit?: number | null; [k: string]: unknown;
  };
  Mounts?: Array<{ Type?: string; Name?: string; Source?: string; Destination: string; RW?: boolean }>;
}

/** A container's inspect as the form (for duplicate and edit). */
export function specFromInspect(info: InspectForSpec): RunSpec {
  const hc = info.HostConfig ?? {};
  const ports = Object.entries(hc.PortBindings ?? {}).flatMap(([ctr, list]) => (list ?? []).map((b) => {
    const c = ctr.endsWith('/tcp') ? ctr.slice(0, -4) : ctr;
    const ip = b.HostIp ? `${b.HostIp.includes(':') ? `[${b.HostIp}]` : b.HostIp}:` : '';
    return b.HostPort || ip ? `${ip}${b.HostPort ?? ''}:${c}` : c;
  }));
  const restart = (hc.RestartPolicy?.Name ?? '') as RestartName | '';
  const network = hc.NetworkMode && hc.NetworkMode !== 'default' && hc.NetworkMode !== 'bridge' ? hc.NetworkMode : '';
  return {
    image: info.Config.Image ?? '',
    name: info.Name.replace(/^\//, ''),
    command: joinWords(info.Config.Cmd ?? []),
    env: (info.Config.Env ?? []).join('\n'),
    ports: ports.join('\n'),
    volumes: (hc.Binds ?? []).join('\n'),
    network,
    restart: restart === '' ? 'no' : restart,
    labels: Object.entries(info.Config.Labels ?? {}).map(([k, v]) => `${k}=${v}`).join('\n'),
    memoryMb: hc.Memory ? String(+(hc.Memory / 1024 / 1024).toFixed(2)) : '',
    cpus: hc.NanoCpus ? String(hc.NanoCpus / 1e9) : '',
    pids: hc.PidsLimit && hc.PidsLimit > 0 ? String(hc.PidsLimit) : '',
  };
}

/** Config fields of an inspect that are facts of the old container, not settings for a new one. */
const NOT_CARRIED = new Set(['Hostname', 'Domainname', 'Image', 'Env', 'Labels', 'ExposedPorts', 'Cmd']);

/**
 * The create body for a recreate: the old container's Config and HostConfig with the form's
 * edits laid over them, and every volume it had kept — named volumes and binds through its
 * HostConfig, anonymous volumes (made by the image's VOLUME lines) re-attached by name at the
 * same path, so their data carries over.
 */
export function recreateBody(info: InspectForSpec, spec: RunSpec): SpecResult {
  const edited = specToCreateBody(spec);
  if (!edited.body) return edited;
  const config: Record<string, unknown> = {};
  for (const [k, v] of Object.entries(info.Config)) if (!NOT_CARRIED.has(k) && v !== null && v !== undefined) config[k] = v;
  const hc: Record<string, unknown> = { ...(info.HostConfig ?? {}), ...edited.body.HostConfig };
  const bound = new Set((edited.body.HostConfig.Binds as string[]).map((b) => b.split(':')[1]));
  const mounts = [...((info.HostConfig?.Mounts as Array<{ Target: string }> | null | undefined) ?? [])];
  const mounted = new Set(mounts.map((m) => m.Target));
  for (const m of info.Mounts ?? []) {
    if (m.Type !== 'volume' || !m.Name || bound.has(m.Destination) || mounted.has(m.Destination)) continue;
    const inBinds = (info.HostConfig?.Binds ?? []).some((b) => b.split(':')[1] === m.Destination);
    if (inBinds) continue; // a named volume the form dropped: the user removed it
    mounts.push({ Type: 'volume', Source: m.Name, Target: m.Destination, ReadOnly: m.RW === false } as { Target: string });
  }
  hc.Mounts = mounts;
  if (!spec.network.trim()) hc.NetworkMode = info.HostConfig?.NetworkMode ?? 'default';
  const body: CreateBody = { ...config, ...edited.body, HostConfig: hc };
  if (!body.Cmd && info.Config.Cmd && !spec.command.trim()) delete body.Cmd;
  return { body, errors: {} };
}
