/**
 * A network namespace joined to the root namespace by one veth pair, with a delay on both
 * directions (so a process inside sees RTT = 2 × delay to the root side). Torn down by
 * `destroy()`, and also synchronously when the bench exits (or dies on SIGINT/SIGTERM via
 * lib/proc's hooks, which call process.exit): the namespace and the root-side veth never
 * outlive the bench.
 *
 * The delay is `tc qdisc add dev <veth> root netem delay D` on each end when the kernel has
 * sch_netem. Kernels built without it (CONFIG_NET_SCH_NETEM unset, e.g. this project's CI
 * VMs) get the same effect at packet level from NFQUEUE: on each side an iptables rule on the
 * INPUT hook for packets arriving from the veth (`-i <veth> -j NFQUEUE`), and a nfqueue-delay.py
 * process in that namespace which holds every packet D ms before accepting it. The delay is
 * applied on the receiving side on purpose: a packet held in the sender's OUTPUT hook still
 * counts against its socket, and TCP small queues then cap the sender at a few packets per RTT
 * (netem avoids that by orphaning the skb; a packet that crossed the veth into the other
 * namespace is already orphaned). The one root-namespace rule matches only our veth and is
 * deleted on teardown.
 */
import { execFileSync } from 'node:child_process';
import { existsSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { startChild, type Child } from './proc.ts';

const DELAY_LINE = join(dirname(fileURLToPath(import.meta.url)), 'nfqueue-delay.py');

const SYS_PATH = '/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin';

function run(cmd: string, args: string[]): string {
  return execFileSync(cmd, args, { encoding: 'utf8', stdio: ['ignore', 'pipe', 'pipe'], env: { ...process.env, PATH: SYS_PATH } });
}

function tryRun(cmd: string, args: string[]): void {
  try {
    run(cmd, args);
  } catch {
    // best effort
  }
}

export interface DelayedNetns {
  name: string;
  rootDev: string;
  nsDev: string;
  rootAddr: string;
  nsAddr: string;
  delayMs: number;
  /** How the delay is made: netem qdiscs, or the NFQUEUE delay line (no sch_netem in this kernel). */
  method: 'netem' | 'nfqueue';
  /** `ip netns exec NAME …` prefix. */
  exec(cmd: string, args: string[]): string;
  /** RTT from the root side to the namespace, by `ping -U` (user-to-user: kernel receive timestamps
   * are taken before an INPUT-hook delay); null when ping is not installed. */
  ping(count?: number): { minMs: number; avgMs: number; maxMs: number; mdevMs: number; lossPercent: number; raw: string } | null;
  /** netem: `tc -s qdisc` of both ends; nfqueue: the iptables counters and the kernel's queue
   * counters (/proc/net/netfilter/nfnetlink_queue: queue, portid, waiting, mode, range, queue
   * drops, user drops, last id, 1). */
  delayStats(): { root: string; ns: string };
  destroy(): void;
}

const live = new Set<DelayedNetns>();
let hooked = false;

function hook(): void {
  if (hooked) return;
  hooked = true;
  process.on('exit', () => {
    for (const ns of [...live]) ns.destroy();
  });
}

/** `prefix`.30 addresses: root gets .1, the namespace .2 (e.g. prefix "10.231.77" → 10.231.77.0/30). */
export async function createDelayedNetns(opts: { tag: string; subnetPrefix: string; delayMs: number }): Promise<DelayedNetns> {
  const name = `dfbench-${opts.tag}`;
  // Interface names are limited to 15 characters.
  const rootDev = `dfbr${opts.tag}`.slice(0, 15);
  const nsDev = `dfbn${opts.tag}`.slice(0, 15);
  const rootAddr = `${opts.subnetPrefix}.1`;
  const nsAddr = `${opts.subnetPrefix}.2`;
  const inUse = run('ip', ['-o', '-4', 'addr', 'show']);
  if (inUse.includes(` ${rootAddr}/`) || inUse.includes(` ${nsAddr}/`)) {
    throw new Error(`${opts.subnetPrefix}.0/30 is already in use on this machine; refusing to touch it`);
  }
  if (existsSync(`/run/netns/${name}`) || existsSync(`/sys/class/net/${rootDev}`)) throw new Error(`netns ${name} or link ${rootDev} already exists`);
  hook();
  let destroyed = false;
  const delayLines: Child[] = [];
  // NFQUEUE numbers are per namespace; the root one must not collide with anyone else's.
  const rootQueue = 30_000 + (process.pid % 30_000);
  let rootRule = false;
  const ns: DelayedNetns = {
    name,
    rootDev,
    nsDev,
    rootAddr,
    nsAddr,
    delayMs: opts.delayMs,
    method: 'netem',
    exec: (cmd, args) => run('ip', ['netns', 'exec', name, cmd, ...args]),
    ping(count = 10) {
      if (!['/usr/bin/ping', '/bin/ping', '/usr/sbin/ping'].some((p) => existsSync(p))) return null;
      const raw = run('ping', ['-n', '-q', '-U', '-c', String(count), '-i', '0.2', '-W', '2', nsAddr]);
      const rtt = /= ([\d.]+)\/([\d.]+)\/([\d.]+)\/([\d.]+) ms/.exec(raw);
      const loss = /([\d.]+)% packet loss/.exec(raw);
      if (!rtt) throw new Error(`cannot read ping output: ${raw}`);
      return { minMs: Number(rtt[1]), avgMs: Number(rtt[2]), maxMs: Number(rtt[3]), mdevMs: Number(rtt[4]), lossPercent: Number(loss?.[1] ?? Number.NaN), raw: raw.trim() };
    },
    delayStats: () =>
      ns.method === 'netem'
        ? {
            root: run('tc', ['-s', 'qdisc', 'show', 'dev', rootDev]).trim(),
            ns: run('ip', ['netns', 'exec', name, 'tc', '-s', 'qdisc', 'show', 'dev', nsDev]).trim(),
          }
        : {
            root: `${run('iptables', ['-L', 'INPUT', '-v', '-n', '-x'])
              .split('\n')
              .filter((l) => l.includes(rootDev) || l.startsWith(' pkts') || /^\s*pkts/.test(l))
              .join('\n')}\nnfnetlink_queue: ${run('cat', ['/proc/net/netfilter/nfnetlink_queue'])
              .split('\n')
              .filter((l) => l.trim().startsWith(`${rootQueue} `))
              .join('\n')}`,
            ns: `${run('ip', ['netns', 'exec', name, 'iptables', '-L', 'INPUT', '-v', '-n', '-x']).trim()}\nnfnetlink_queue: ${run('ip', ['netns', 'exec', name, 'cat', '/proc/net/netfilter/nfnetlink_queue']).trim()}`,
          },
    destroy() {
      if (destroyed) return;
      destroyed = true;
      live.delete(ns);
      // Processes inside keep a namespace alive; the delay lines are ours, by pid.
      for (const d of delayLines) d.kill('SIGKILL');
      if (rootRule) tryRun('iptables', ['-D', 'INPUT', '-i', rootDev, '-j', 'NFQUEUE', '--queue-num', String(rootQueue)]);
      // Deleting the namespace destroys its end of the pair, and with it the root end.
      tryRun('ip', ['netns', 'del', name]);
      if (existsSync(`/sys/class/net/${rootDev}`)) tryRun('ip', ['link', 'del', rootDev]);
    },
  };
  live.add(ns);
  try {
    run('ip', ['netns', 'add', name]);
    run('ip', ['link', 'add', rootDev, 'type', 'veth', 'peer', 'name', nsDev]);
    run('ip', ['link', 'set', nsDev, 'netns', name]);
    run('ip', ['addr', 'add', `${rootAddr}/30`, 'dev', rootDev]);
    run('ip', ['link', 'set', rootDev, 'up']);
    ns.exec('ip', ['addr', 'add', `${nsAddr}/30`, 'dev', nsDev]);
    ns.exec('ip', ['link', 'set', nsDev, 'up']);
    ns.exec('ip', ['link', 'set', 'lo', 'up']);
    try {
      run('tc', ['qdisc', 'add', 'dev', rootDev, 'root', 'netem', 'delay', `${opts.delayMs}ms`]);
      ns.exec('tc', ['qdisc', 'add', 'dev', nsDev, 'root', 'netem', 'delay', `${opts.delayMs}ms`]);
    } catch (err) {
      const why = String((err as { stderr?: string }).stderr ?? (err as Error).message);
      if (!/qdisc kind is unknown|No such file or directory/i.test(why)) throw err;
      tryRun('tc', ['qdisc', 'del', 'dev', rootDev, 'root']);
      ns.method = 'nfqueue';
      const inNs = startChild(`delay-line-${name}`, 'ip', ['netns', 'exec', name, 'python3', DELAY_LINE, String(opts.delayMs), '1']);
      delayLines.push(inNs);
      const inRoot = startChild('delay-line-root', 'python3', [DELAY_LINE, String(opts.delayMs), String(rootQueue)]);
      delayLines.push(inRoot);
      await Promise.all([inNs.waitForLine(/^ready$/, 10_000), inRoot.waitForLine(/^ready$/, 10_000)]);
      ns.exec('iptables', ['-A', 'INPUT', '-i', nsDev, '-j', 'NFQUEUE', '--queue-num', '1']);
      rootRule = true;
      run('iptables', ['-I', 'INPUT', '-i', rootDev, '-j', 'NFQUEUE', '--queue-num', String(rootQueue)]);
    }
  } catch (err) {
    ns.destroy();
    throw new Error(`setting up netns ${name}: ${(err as Error & { stderr?: string }).stderr ?? (err as Error).message}`);
  }
  return ns;
}

/**
 * RTT as TCP sees it: time for connect() to complete (SYN → SYN-ACK) from here to a listener
 * that `startListener` runs inside the namespace. Needs no ping binary.
 */
export async function tcpConnectRtt(host: string, port: number, count = 10): Promise<number[]> {
  const { connect } = await import('node:net');
  const out: number[] = [];
  for (let i = 0; i < count; i++) {
    out.push(
      await new Promise<number>((resolve, reject) => {
        const t0 = process.hrtime.bigint();
        const s = connect({ host, port });
        s.once('connect', () => {
          resolve(Number(process.hrtime.bigint() - t0) / 1e6);
          s.destroy();
        });
        s.once('error', reject);
      }),
    );
  }
  return out;
}
