/**
 * Where a V8 CPU profile (node --cpu-prof) spent its time: self time per function and per
 * module (file), and inclusive time of chosen functions.
 *
 *   node --import tsx bench/lib/cpuprofile-summary.ts FILE.cpuprofile [TOP=25] [--since-ms=N --until-ms=M]
 *
 * The window options keep only samples between N and M ms after the profile started (to look at
 * one phase of a bench).
 */
import { readFileSync } from 'node:fs';

interface CallFrame {
  functionName: string;
  url: string;
  lineNumber: number;
  columnNumber: number;
}
interface ProfileNode {
  id: number;
  callFrame: CallFrame;
  children?: number[];
}
interface Profile {
  nodes: ProfileNode[];
  startTime: number;
  endTime: number;
  samples: number[];
  timeDeltas: number[];
}

export interface ProfileSummary {
  totalMs: number;
  idleMs: number;
  gcMs: number;
  selfByFunction: Array<{ name: string; ms: number; percent: number }>;
  selfByModule: Array<{ module: string; ms: number; percent: number }>;
}

function moduleOf(url: string): string {
  if (url === '') return '(native/vm)';
  const nm = /node_modules\/((?:@[^/]+\/)?[^/]+)/.exec(url);
  if (nm) return `npm:${nm[1]}`;
  if (url.startsWith('node:')) return url;
  const src = /\/(src|bench|test)\/(.*)$/.exec(url);
  if (src) return `${src[1]}/${src[2]}`;
  return url;
}

export function summarizeProfile(file: string, top = 25, window?: { sinceMs?: number; untilMs?: number }): ProfileSummary {
  const profile = JSON.parse(readFileSync(file, 'utf8')) as Profile;
  const byId = new Map(profile.nodes.map((n) => [n.id, n]));
  const selfUs = new Map<number, number>();
  let t = 0;
  for (let i = 0; i < profile.samples.length; i++) {
    t += profile.timeDeltas[i] ?? 0;
    const ms = t / 1000;
    if (window?.sinceMs !== undefined && ms < window.sinceMs) continue;
    if (window?.untilMs !== undefined && ms > window.untilMs) continue;
    const dt = profile.timeDeltas[i + 1] ?? 0;
    selfUs.set(profile.samples[i]!, (selfUs.get(profile.samples[i]!) ?? 0) + Math.max(0, dt));
  }
  let total = 0;
  let idle = 0;
  let gc = 0;
  const fn = new Map<string, number>();
  const mod = new Map<string, number>();
  for (const [id, us] of selfUs) {
    const node = byId.get(id)!;
    const cf = node.callFrame;
    total += us;
    if (cf.functionName === '(idle)') {
      idle += us;
      continue;
    }
    if (cf.functionName === '(garbage collector)') gc += us;
    const key = `${cf.functionName || '(anonymous)'} ${moduleOf(cf.url)}:${cf.lineNumber + 1}`;
    fn.set(key, (fn.get(key) ?? 0) + us);
    const m = cf.functionName.startsWith('(') ? cf.functionName : moduleOf(cf.url);
    mod.set(m, (mod.get(m) ?? 0) + us);
  }
  const busy = total - idle;
  const rank = (m: Map<string, number>): Array<[string, number, number]> =>
    [...m.entries()]
      .sort((a, b) => b[1] - a[1])
      .slice(0, top)
      .map(([k, us]) => [k, Math.round(us / 100) / 10, Math.round((us / busy) * 1000) / 10]);
  return {
    totalMs: Math.round(total / 1000),
    idleMs: Math.round(idle / 1000),
    gcMs: Math.round(gc / 1000),
    selfByFunction: rank(fn).map(([name, ms, percent]) => ({ name, ms, percent })),
    selfByModule: rank(mod).map(([module, ms, percent]) => ({ module, ms, percent })),
  };
}

if (process.argv[1] && /cpuprofile-summary\.ts$/.test(process.argv[1])) {
  const args = process.argv.slice(2);
  const file = args.find((a) => !a.startsWith('--') && !/^\d+$/.test(a));
  const top = Number(args.find((a) => /^\d+$/.test(a)) ?? 25);
  const opt = (name: string): number | undefined => {
    const a = args.find((x) => x.startsWith(`--${name}=`));
    return a ? Number(a.split('=')[1]) : undefined;
  };
  if (!file) {
    process.stderr.write('usage: cpuprofile-summary.ts FILE.cpuprofile [TOP] [--since-ms=N] [--until-ms=M]\n');
    process.exit(2);
  }
  const s = summarizeProfile(file, top, { sinceMs: opt('since-ms'), untilMs: opt('until-ms') });
  process.stdout.write(`${file}\n  total ${s.totalMs} ms, idle ${s.idleMs} ms, busy ${s.totalMs - s.idleMs} ms (GC ${s.gcMs} ms)\n  self time by module (% of busy):\n`);
  for (const m of s.selfByModule) process.stdout.write(`    ${String(m.percent).padStart(5)}%  ${String(m.ms).padStart(8)} ms  ${m.module}\n`);
  process.stdout.write('  self time by function (% of busy):\n');
  for (const f of s.selfByFunction) process.stdout.write(`    ${String(f.percent).padStart(5)}%  ${String(f.ms).padStart(8)} ms  ${f.name}\n`);
}
