/**
 * The run / edit form as plain text fields, and the Engine API create body made from it (pure
 * functions, unit-tested in Node). Going the other way, a container's inspect becomes the form
 * (duplicate, edit), and a recreate body keeps what the form does not show but someone set: its
 * volumes (named and bind, and anonymous ones re-attached from the old container's mounts), its
 * networks, entrypoint, working dir, user and the HostConfig settings that differ from the
 * engine's own defaults — never the fields the engine fills in by itself.
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
  image: '',
  name: '',
  command: '',
  env: '',
  ports: '',
  volumes: '',
  network: '',
  restart: 'no',
  labels: '',
  memoryMb: '',
  cpus: '',
  pids: '',
};

export type CreateBody = Record<string, unknown> & { Image: string; HostConfig: Record<string, unknown> };

const lines = (s: string): Array<[number, string]> =>
  s
    .split('\n')
    .map((l, i): [number, string] => [i + 1, l.trim()])
    .filter(([, l]) => l !== '' && !l.startsWith('#'));

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
    } else if (ch === '"' || ch === "'") {
      quote = ch;
      has = true;
    } else if (ch === '\\' && i + 1 < s.length) {
      word += s[++i];
      has = true;
    } else if (/\s/.test(ch)) {
      if (has || word) out.push(word);
      word = '';
      has = false;
    } else word += ch;
  }
  if (quote) throw new Error(`unclosed ${quote} quote`);
  if (has || word) out.push(word);
  return out;
}

/** Words back into a line that splitWords reads the same. */
export function joinWords(words: readonly string[]): string {
  return words.map((w) => (w !== '' && /^[\w@%+=:,./-]+$/.test(w) ? w : `"${w.replace(/(["\\])/g, '\\$1')}"`)).join(' ');
}

interface PortRule {
  hostIp: string;
  hostPort: string;
  containerPort: string;
}

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
  try {
    cmd = splitWords(spec.command);
  } catch (e) {
    errors.command = (e as Error).message;
  }
  const env: string[] = [];
  for (const [n, l] of lines(spec.env)) {
    if (!/^[^=\s][^=]*=/.test(l)) {
      errors.env = `Line ${n}: write KEY=value.`;
      break;
    }
    env.push(l);
  }
  const labels: Record<string, string> = {};
  for (const [n, l] of lines(spec.labels)) {
    const i = l.indexOf('=');
    if (i <= 0) {
      errors.labels = `Line ${n}: write key=value.`;
      break;
    }
    labels[l.slice(0, i).trim()] = l.slice(i + 1).trim();
  }
  const exposed: Record<string, object> = {};
  const bindings: Record<string, Array<{ HostIp: string; HostPort: string }>> = {};
  for (const [n, l] of lines(spec.ports)) {
    const p = parsePort(l);
    if (!p) {
      errors.ports = `Line ${n}: write HOST:CONTAINER such as 8080:80, or IP:HOST:CONTAINER/udp.`;
      break;
    }
    exposed[p.containerPort] = {};
    (bindings[p.containerPort] ??= []).push({ HostIp: p.hostIp, HostPort: p.hostPort });
  }
  const binds: string[] = [];
  for (const [n, l] of lines(spec.volumes)) {
    const parts = l.split(':');
    const ok = parts.length >= 2 && parts.length <= 3 && parts[0] !== '' && parts[1]!.startsWith('/') && (parts.length === 2 || /^(ro|rw|z|Z|ro,z|ro,Z|rw,z|rw,Z)$/.test(parts[2]!));
    if (!ok) {
      errors.volumes = `Line ${n}: write VOLUME:/path or /host/path:/path, with :ro for read-only.`;
      break;
    }
    binds.push(l);
  }
  const num = (field: 'memoryMb' | 'cpus' | 'pids', v: string, integer: boolean): number | null => {
    if (!v.trim()) return null;
    const x = Number(v);
    if (!Number.isFinite(x) || x <= 0 || (integer && !Number.isInteger(x))) {
      errors[field] = integer ? 'A whole number above 0, or empty.' : 'A number above 0, or empty.';
      return null;
    }
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
  Id?: string;
  Name: string;
  Config: { Image?: string; Cmd?: string[] | null; Env?: string[] | null; Labels?: Record<string, string> | null; [k: string]: unknown };
  HostConfig?: {
    RestartPolicy?: { Name?: string; MaximumRetryCount?: number };
    PortBindings?: Record<string, Array<{ HostIp?: string; HostPort?: string }> | null> | null;
    Binds?: string[] | null;
    NetworkMode?: string;
    Memory?: number;
    NanoCpus?: number;
    PidsLimit?: number | null;
    [k: string]: unknown;
  };
  Mounts?: Array<{ Type?: string; Name?: string; Source?: string; Destination: string; RW?: boolean }>;
  NetworkSettings?: { Networks?: Record<string, EndpointInspect> | null } | null;
}

/** A container's inspect as the form (for duplicate and edit). */
export function specFromInspect(info: InspectForSpec): RunSpec {
  const hc = info.HostConfig ?? {};
  const ports = Object.entries(hc.PortBindings ?? {}).flatMap(([ctr, list]) =>
    (list ?? []).map((b) => {
      const c = ctr.endsWith('/tcp') ? ctr.slice(0, -4) : ctr;
      const ip = b.HostIp ? `${b.HostIp.includes(':') ? `[${b.HostIp}]` : b.HostIp}:` : '';
      return b.HostPort || ip ? `${ip}${b.HostPort ?? ''}:${c}` : c;
    }),
  );
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
    labels: Object.entries(info.Config.Labels ?? {})
      .map(([k, v]) => `${k}=${v}`)
      .join('\n'),
    memoryMb: hc.Memory ? String(+(hc.Memory / 1024 / 1024).toFixed(2)) : '',
    cpus: hc.NanoCpus ? String(hc.NanoCpus / 1e9) : '',
    pids: hc.PidsLimit && hc.PidsLimit > 0 ? String(hc.PidsLimit) : '',
  };
}

/** Config settings carried over as they are: the form does not show them, and they were the
 * user's (or the image's, which the new container would get anyway). */
const CONFIG_CARRIED = [
  'Entrypoint',
  'WorkingDir',
  'User',
  'Tty',
  'OpenStdin',
  'StdinOnce',
  'AttachStdin',
  'AttachStdout',
  'AttachStderr',
  'StopSignal',
  'StopTimeout',
  'Healthcheck',
  'Shell',
  'Domainname',
] as const;

/** HostConfig settings carried over only when they differ from what the engine fills in by
 * itself. Never MaskedPaths, ReadonlyPaths, or any other field the engine reports but nobody
 * asked for: sent back, the host policy rightly judges them as if the user had set them
 * (overriding MaskedPaths counts as privileged). */
const HOST_CARRIED: ReadonlyArray<[string, (v: unknown) => boolean]> = [
  ['PublishAllPorts', (v) => v === true],
  ['VolumesFrom', (v) => Array.isArray(v) && v.length > 0],
  ['Links', (v) => Array.isArray(v) && v.length > 0],
  ['Dns', (v) => Array.isArray(v) && v.length > 0],
  ['DnsOptions', (v) => Array.isArray(v) && v.length > 0],
  ['DnsSearch', (v) => Array.isArray(v) && v.length > 0],
  ['ExtraHosts', (v) => Array.isArray(v) && v.length > 0],
  ['GroupAdd', (v) => Array.isArray(v) && v.length > 0],
  ['CapAdd', (v) => Array.isArray(v) && v.length > 0],
  ['CapDrop', (v) => Array.isArray(v) && v.length > 0],
  ['SecurityOpt', (v) => Array.isArray(v) && v.length > 0],
  ['Devices', (v) => Array.isArray(v) && v.length > 0],
  ['Ulimits', (v) => Array.isArray(v) && v.length > 0],
  ['Tmpfs', (v) => !!v && typeof v === 'object' && Object.keys(v).length > 0],
  ['Sysctls', (v) => !!v && typeof v === 'object' && Object.keys(v).length > 0],
  ['StorageOpt', (v) => !!v && typeof v === 'object' && Object.keys(v).length > 0],
  ['Privileged', (v) => v === true],
  ['ReadonlyRootfs', (v) => v === true],
  ['Init', (v) => v === true],
  ['OomKillDisable', (v) => v === true],
  ['OomScoreAdj', (v) => typeof v === 'number' && v !== 0],
  ['ShmSize', (v) => typeof v === 'number' && v !== 0 && v !== 64 * 1024 * 1024],
  ['IpcMode', (v) => typeof v === 'string' && v !== '' && v !== 'private' && v !== 'shareable'],
  ['PidMode', (v) => typeof v === 'string' && v !== ''],
  ['UTSMode', (v) => typeof v === 'string' && v !== ''],
  ['UsernsMode', (v) => typeof v === 'string' && v !== ''],
  ['CgroupParent', (v) => typeof v === 'string' && v !== ''],
  ['CgroupnsMode', (v) => typeof v === 'string' && v !== '' && v !== 'private' && v !== 'host'],
  ['Runtime', (v) => typeof v === 'string' && v !== '' && v !== 'runc'],
  [
    'LogConfig',
    (v) =>
      !!v &&
      typeof v === 'object' &&
      ((v as { Type?: string }).Type ?? '') !== '' &&
      ((v as { Type?: string }).Type !== 'json-file' || Object.keys((v as { Config?: object }).Config ?? {}).length > 0),
  ],
  // Resources the form does not show.
  ['CpuShares', (v) => typeof v === 'number' && v !== 0],
  ['CpuPeriod', (v) => typeof v === 'number' && v !== 0],
  ['CpuQuota', (v) => typeof v === 'number' && v !== 0],
  ['CpusetCpus', (v) => typeof v === 'string' && v !== ''],
  ['CpusetMems', (v) => typeof v === 'string' && v !== ''],
  ['MemoryReservation', (v) => typeof v === 'number' && v !== 0],
  ['MemorySwap', (v) => typeof v === 'number' && v !== 0],
  ['MemorySwappiness', (v) => typeof v === 'number' && v >= 0],
  ['BlkioWeight', (v) => typeof v === 'number' && v !== 0],
  ['AutoRemove', (v) => v === true],
];

type EndpointInspect = { Aliases?: string[] | null; IPAMConfig?: Record<string, unknown> | null; Links?: string[] | null; DriverOpts?: Record<string, string> | null };

/** An endpoint's settings worth keeping: what was asked for, not what the engine assigned. */
function endpointSettings(ep: EndpointInspect, oldId: string): Record<string, unknown> {
  const out: Record<string, unknown> = {};
  const aliases = (ep.Aliases ?? []).filter((a) => !oldId.startsWith(a));
  if (aliases.length) out.Aliases = aliases;
  const ipam = Object.fromEntries(Object.entries(ep.IPAMConfig ?? {}).filter(([, v]) => v !== '' && v !== null && !(Array.isArray(v) && v.length === 0)));
  if (Object.keys(ipam).length) out.IPAMConfig = ipam;
  if (ep.Links?.length) out.Links = ep.Links;
  if (ep.DriverOpts && Object.keys(ep.DriverOpts).length) out.DriverOpts = ep.DriverOpts;
  return out;
}

export interface RecreateResult extends SpecResult {
  /** Networks to connect the new container to after create (Engine API before 1.44 takes one
   * endpoint at create): network name → endpoint settings. */
  connect: Array<{ network: string; settings: Record<string, unknown> }>;
}

/**
 * The create body for a recreate: the form's fields, plus exactly what must carry over and the
 * form does not show — volumes (named and bind through Binds; `--mount`s; anonymous volumes made
 * by the image's VOLUME lines re-attached by name at the same path, so their data stays), the
 * network mode and every network with its aliases and fixed addresses, entrypoint, working dir,
 * user, and the HostConfig settings someone set (HOST_CARRIED). Nothing the engine filled in on
 * its own is sent back.
 */
export function recreateBody(info: InspectForSpec, spec: RunSpec): RecreateResult {
  const edited = specToCreateBody(spec);
  if (!edited.body) return { ...edited, connect: [] };
  const oldId = info.Id ?? '';
  const config: Record<string, unknown> = {};
  for (const k of CONFIG_CARRIED) {
    const v = info.Config[k];
    if (v !== null && v !== undefined && v !== '' && v !== false) config[k] = v;
  }
  const hostname = info.Config.Hostname;
  if (typeof hostname === 'string' && hostname !== '' && !oldId.startsWith(hostname)) config.Hostname = hostname;
  const old = info.HostConfig ?? {};
  const hc: Record<string, unknown> = {};
  for (const [k, keep] of HOST_CARRIED) if (keep(old[k])) hc[k] = old[k];
  Object.assign(hc, edited.body.HostConfig);
  // The engine reports a swap limit of twice the memory limit when none was asked for; keep
  // only one set by hand, and only while the memory limit it goes with stays the same.
  if (hc.MemorySwap !== undefined && (hc.Memory !== old.Memory || (hc.MemorySwap !== -1 && hc.MemorySwap === 2 * (old.Memory ?? 0)))) delete hc.MemorySwap;
  const oldRestart = old.RestartPolicy as { Name?: string; MaximumRetryCount?: number } | undefined;
  if (spec.restart === 'on-failure' && oldRestart?.Name === 'on-failure' && oldRestart.MaximumRetryCount) {
    hc.RestartPolicy = { Name: 'on-failure', MaximumRetryCount: oldRestart.MaximumRetryCount };
  }
  const bound = new Set((edited.body.HostConfig.Binds as string[]).map((b) => b.split(':')[1]));
  const mounts = [...((old.Mounts as Array<{ Target: string }> | null | undefined) ?? [])];
  const mounted = new Set(mounts.map((m) => m.Target));
  for (const m of info.Mounts ?? []) {
    if (m.Type !== 'volume' || !m.Name || bound.has(m.Destination) || mounted.has(m.Destination)) continue;
    const inBinds = (old.Binds ?? []).some((b) => b.split(':')[1] === m.Destination);
    if (inBinds) continue; // a named volume the form dropped: the user removed it
    mounts.push({ Type: 'volume', Source: m.Name, Target: m.Destination, ReadOnly: m.RW === false } as { Target: string });
  }
  if (mounts.length) hc.Mounts = mounts;
  const mode = spec.network.trim() || old.NetworkMode || 'default';
  hc.NetworkMode = mode;
  const body: CreateBody = { ...config, ...edited.body, HostConfig: hc };
  if (!body.Cmd && info.Config.Cmd && !spec.command.trim()) delete body.Cmd;
  // Networks: the primary one (NetworkMode) at create, the others connected after it.
  const connect: RecreateResult['connect'] = [];
  const networks = info.NetworkSettings?.Networks ?? {};
  const primary = mode === 'default' ? 'bridge' : mode;
  for (const [net, ep] of Object.entries(networks)) {
    const settings = endpointSettings(ep, oldId);
    if (net === primary) {
      if (Object.keys(settings).length) body.NetworkingConfig = { EndpointsConfig: { [net]: settings } };
    } else if (!/^(host|none|container:)/.test(mode)) {
      connect.push({ network: net, settings });
    }
  }
  return { body, errors: {}, connect };
}
