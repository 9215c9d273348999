/** Formatting for people: sizes, times, ports, modes. */
import type { DockerPort } from './types.ts';

export function bytes(n: number | null | undefined): string {
  if (n === null || n === undefined || !Number.isFinite(n) || n < 0) return '—';
  if (n < 1024) return `${n} B`;
  const units = ['KB', 'MB', 'GB', 'TB', 'PB'];
  let v = n / 1024;
  let i = 0;
  while (v >= 1024 && i < units.length - 1) {
    v /= 1024;
    i++;
  }
  return `${v >= 100 ? v.toFixed(0) : v >= 10 ? v.toFixed(1) : v.toFixed(2)} ${units[i]}`;
}

/** Accepts ISO strings, epoch milliseconds, or Docker's epoch seconds (< 1e11). */
export function toDate(t: string | number | null | undefined): Date | null {
  if (t === null || t === undefined || t === '') return null;
  if (typeof t === 'number') return new Date(t < 1e11 ? t * 1000 : t);
  if (t.startsWith('0001-01-01')) return null; // Go's zero time
  const d = new Date(t);
  return Number.isNaN(d.getTime()) ? null : d;
}

const hasRtf = typeof Intl !== 'undefined' && 'RelativeTimeFormat' in Intl;
const rtf = hasRtf ? new Intl.RelativeTimeFormat(undefined, { numeric: 'auto' }) : null;
const rtfShort = hasRtf ? new Intl.RelativeTimeFormat(undefined, { numeric: 'auto', style: 'short' }) : null;

export function ago(t: string | number | null | undefined, now = Date.now(), short = false): string {
  const d = toDate(t);
  if (!d) return '—';
  const s = Math.round((d.getTime() - now) / 1000);
  const abs = Math.abs(s);
  const [v, unit]: [number, Intl.RelativeTimeFormatUnit] =
    abs < 45
      ? [s, 'second']
      : abs < 45 * 60
        ? [Math.round(s / 60), 'minute']
        : abs < 22 * 3600
          ? [Math.round(s / 3600), 'hour']
          : abs < 26 * 86400
            ? [Math.round(s / 86400), 'day']
            : abs < 320 * 86400
              ? [Math.round(s / (30 * 86400)), 'month']
              : [Math.round(s / (365 * 86400)), 'year'];
  if (unit === 'second' && abs < 10) return 'just now';
  const f = short ? rtfShort : rtf;
  return f ? f.format(v, unit) : `${Math.abs(v)} ${unit}s ${v < 0 ? 'ago' : 'from now'}`;
}

export function dateTime(t: string | number | null | undefined): string {
  const d = toDate(t);
  if (!d) return '—';
  return d.toLocaleString(undefined, { year: 'numeric', month: 'short', day: 'numeric', hour: '2-digit', minute: '2-digit', second: '2-digit' });
}

export function shortId(id: string): string {
  return id.replace(/^sha256:/, '').slice(0, 12);
}

/** "0.0.0.0:8080→80/tcp" per published port, collapsing the IPv4/IPv6 pair. */
export function ports(list: DockerPort[] | undefined | null): string[] {
  if (!list || list.length === 0) return [];
  const seen = new Set<string>();
  const out: string[] = [];
  const sorted = [...list].sort((a, b) => a.PrivatePort - b.PrivatePort || (a.PublicPort ?? 0) - (b.PublicPort ?? 0));
  for (const p of sorted) {
    const s = p.PublicPort ? `${p.PublicPort}→${p.PrivatePort}/${p.Type}` : `${p.PrivatePort}/${p.Type}`;
    const key = s;
    if (seen.has(key)) continue;
    seen.add(key);
    const ip = p.IP && p.IP !== '0.0.0.0' && p.IP !== '::' ? `${p.IP}:` : '';
    out.push(ip + s);
  }
  return out;
}

/** Unix mode bits as `drwxr-xr-x`; strings are shown as they are. */
export function fileMode(mode: number | string, type?: string): string {
  if (typeof mode === 'string') {
    if (!/^[0-7]{3,6}$/.test(mode)) return mode;
    mode = parseInt(mode, 8);
  }
  const t = type === 'dir' ? 'd' : type === 'symlink' ? 'l' : '-';
  const bits = 'rwxrwxrwx';
  let s = '';
  for (let i = 0; i < 9; i++) s += mode & (1 << (8 - i)) ? bits[i] : '-';
  return t + s;
}

export function plural(n: number, one: string, many = `${one}s`): string {
  return `${n} ${n === 1 ? one : many}`;
}

/** "key" or "key=value" against a container's labels. */
export function labelMatches(labels: Record<string, string> | null | undefined, filter: string): boolean {
  const f = filter.trim();
  if (!f) return true;
  if (!labels) return false;
  const eq = f.indexOf('=');
  if (eq < 0) return Object.hasOwn(labels, f);
  const k = f.slice(0, eq).trim();
  const v = f.slice(eq + 1).trim();
  return labels[k] === v;
}

/**
 * Docker's list `Status` ("Up 2 seconds (healthy)", "Exited (3) 5 minutes ago") is computed when
 * the list was taken, and the hub keeps lists until something changes: drop the stale times.
 */
export function stateDetail(state: string, status: string): string {
  const health = /\((healthy|unhealthy|health: starting)\)/.exec(status)?.[1];
  if (state === 'running') return health ?? '';
  const exited = /^Exited \((-?\d+)\)/.exec(status);
  if (exited) return `exit code ${exited[1]}`;
  if (state === 'paused') return health ?? '';
  const restarting = /^Restarting \((-?\d+)\)/.exec(status);
  if (restarting) return `last exit code ${restarting[1]}`;
  return '';
}
