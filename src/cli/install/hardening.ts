/**
 * The sandbox both services run in, and restart-on-failure with a backoff: systemd directives,
 * each with the reason it is there (and, for the ones left out, why). What differs between the
 * hub and the agent — capabilities, address families, writable paths — comes in as options.
 */
import type { Directive } from './unit-file.ts';

export interface HardeningOptions {
  /** Capabilities kept (the bounding set), each with its reason; none at all when empty. */
  capabilities: Array<{ name: string; why: string }>;
  /** Socket families beyond AF_UNIX/AF_INET/AF_INET6, each with its reason. */
  extraAddressFamilies: Array<{ name: string; why: string }>;
  /** Writable paths besides the StateDirectory (`-` prefix: skipped when absent), with reasons. */
  readWritePaths: Array<{ path: string; why: string }>;
  /** Something the service needs lives under /home, /root or /run/user: read-only there, not hidden. */
  needsHome: boolean;
  /** The running systemd's version (null: unknown); directives newer than it are left out. */
  systemdVersion: number | null;
}

/** Directives not set, and why: printed in the unit's header. */
export const LEFT_OUT = ['Not set: MemoryDenyWriteExecute (V8 compiles JavaScript into memory it then runs);', 'PrivateUsers (root mapped away would lose its rights on the files it must reach).'];

/** Restart=on-failure, and how fast: a crash is retried for ever, never faster than every 5 s. */
export function restartDirectives(systemdVersion: number | null): { unit: Directive[]; service: Directive[] } {
  const service: Directive[] = [
    { key: 'Restart', value: 'on-failure', why: 'A crash or a non-zero exit starts it again; a clean stop (systemctl stop) does not.' },
    { key: 'RestartSec', value: '5s', why: 'Wait 5 s before the first restart, so a crash loop cannot spin.' },
  ];
  if (systemdVersion !== null && systemdVersion >= 254) {
    service.push(
      { key: 'RestartSteps', value: '8', why: 'Back off: each further restart in a row waits longer (systemd 254+) …' },
      { key: 'RestartMaxDelaySec', value: '5min', why: '… up to 5 minutes between tries.' },
    );
  }
  return {
    unit: [
      {
        key: 'StartLimitIntervalSec',
        value: '0',
        why: 'Never stop restarting it: a service that gives up stays down until someone notices\n(RestartSec in [Service] keeps the pace bounded).',
      },
    ],
    service,
  };
}

export function hardeningDirectives(opts: HardeningOptions): Directive[] {
  const d: Directive[] = [
    { key: 'UMask', value: '0077', why: 'Files it makes (keys, tokens, the database) are readable by root alone.' },
    { key: 'NoNewPrivileges', value: 'yes', why: 'Neither it nor anything it runs can gain privileges (setuid binaries, file capabilities).' },
    {
      key: 'CapabilityBoundingSet',
      value: opts.capabilities.map((c) => c.name).join(' '),
      why:
        opts.capabilities.length === 0
          ? 'It runs as root but holds no capability at all: it needs none.'
          : `It runs as root with only these capabilities:\n${opts.capabilities.map((c) => `  ${c.name}: ${c.why}`).join('\n')}`,
    },
    { key: 'ProtectSystem', value: 'strict', why: 'The whole file system is read-only to it, but for the paths named below and its StateDirectory.' },
    opts.needsHome
      ? { key: 'ProtectHome', value: 'read-only', why: 'Something it runs from lives under /home, /root or /run/user: readable there, never writable.' }
      : { key: 'ProtectHome', value: 'yes', why: 'Home directories (/home, /root, /run/user) are hidden: it has no business there.' },
  ];
  for (const p of opts.readWritePaths) d.push({ key: 'ReadWritePaths', value: p.path, why: p.why });
  d.push(
    { key: 'PrivateTmp', value: 'yes', why: 'A /tmp of its own (the TypeScript loader caches compiled files there), emptied when it stops.' },
    { key: 'PrivateDevices', value: 'yes', why: 'Only pseudo-devices (/dev/null, /dev/urandom …) in /dev; no disks, no raw hardware.' },
    { key: 'ProtectKernelTunables', value: 'yes', why: '/proc/sys and /sys are read-only: it cannot retune the kernel.' },
    { key: 'ProtectKernelModules', value: 'yes', why: 'It cannot load or unload kernel modules.' },
    { key: 'ProtectKernelLogs', value: 'yes', why: 'It cannot read or write the kernel log buffer.' },
    { key: 'ProtectControlGroups', value: 'yes', why: 'The cgroup tree is read-only to it.' },
    { key: 'ProtectClock', value: 'yes', why: 'It cannot set the system clock.' },
    { key: 'ProtectHostname', value: 'yes', why: 'It cannot change the host name.' },
    { key: 'ProtectProc', value: 'invisible', why: 'Other processes are hidden in its /proc.' },
    {
      key: 'RestrictAddressFamilies',
      value: ['AF_UNIX', 'AF_INET', 'AF_INET6', ...opts.extraAddressFamilies.map((f) => f.name)].join(' '),
      why: ['Sockets: unix (a local socket), IPv4 and IPv6 (HTTPS); nothing else (no raw packets).', ...opts.extraAddressFamilies.map((f) => `${f.name}: ${f.why}`)].join('\n'),
    },
    { key: 'RestrictNamespaces', value: 'yes', why: 'It cannot make namespaces (the usual first step of a container escape).' },
    { key: 'LockPersonality', value: 'yes', why: 'It cannot switch execution domain (personality(2)).' },
    { key: 'RestrictRealtime', value: 'yes', why: 'No realtime scheduling: it cannot starve the host.' },
    { key: 'RestrictSUIDSGID', value: 'yes', why: 'It cannot make setuid or setgid files.' },
    { key: 'SystemCallArchitectures', value: 'native', why: 'Only the native system call ABI (no 32-bit calls on a 64-bit host).' },
    { key: 'SystemCallFilter', value: '@system-service', why: "Only the system calls a typical service makes (systemd's @system-service set)." },
    { key: 'SystemCallErrorNumber', value: 'EPERM', why: 'A call outside that set fails with EPERM instead of killing the process.' },
  );
  return d;
}

/** True when a path lies where ProtectHome=yes would hide it. */
export function underHome(path: string): boolean {
  return /^\/(home|root|run\/user)(\/|$)/.test(path);
}
