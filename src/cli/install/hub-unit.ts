/**
 * The hub's systemd unit: `dockfleet hub` on its data directory, in the sandbox of hardening.ts.
 * The hub needs no capability unless it listens on a port below 1024.
 */
import { hardeningDirectives, LEFT_OUT, restartDirectives, underHome } from './hardening.ts';
import type { ProgramPaths } from './program-paths.ts';
import { execLine, renderUnit, type Directive } from './unit-file.ts';

export const HUB_UNIT = 'dockfleet-hub.service';
export const HUB_STATE_NAME = 'dockfleet-hub';
/** DIR inside the StateDirectory, so that the master key beside it (DIR.master.key) is there too. */
export const HUB_DATA_DIR = `/var/lib/${HUB_STATE_NAME}/data`;

export interface HubUnitOptions {
  programs: ProgramPaths;
  /** Absolute; HUB_DATA_DIR unless --data said otherwise. */
  dataDir: string;
  /** The master key file beside DIR (made at install when DIR is not HUB_DATA_DIR). */
  masterKeyFile: string;
  /** HOST:PORT addresses it listens on (--listen, --edge-listen, --edge-http), as given. */
  listen: { flag: string; value: string }[];
  logLevel: string | null;
  systemdVersion: number | null;
}

function port(hostPort: string): number {
  return Number(/:(\d+)$/.exec(hostPort)?.[1] ?? NaN);
}

export function hubUnitText(o: HubUnitOptions): string {
  const argv = [o.programs.node, o.programs.dockfleet, 'hub', '--data', o.dataDir];
  for (const l of o.listen) argv.push(`--${l.flag}`, l.value);
  if (o.logLevel !== null) argv.push('--log-level', o.logLevel);
  const ownState = o.dataDir === HUB_DATA_DIR;
  const low = o.listen.filter((l) => port(l.value) < 1024);
  const restart = restartDirectives(o.systemdVersion);
  const state: Directive[] = ownState
    ? [
        { key: 'StateDirectory', value: HUB_STATE_NAME, why: `Its data directory (${HUB_DATA_DIR}) and the master key beside it: made by systemd, writable despite ProtectSystem.` },
        { key: 'StateDirectoryMode', value: '0700', why: 'The CA key, the database and admin.token are in there: root alone may list it.' },
      ]
    : [];
  const service: Directive[] = [
    { key: 'Type', value: 'exec', why: 'Started once the program runs (a missing node or dockfleet fails the start, visibly).' },
    { key: 'ExecStart', value: execLine(argv), why: 'The hub on its data directory.' },
    ...restart.service,
    ...state,
    ...hardeningDirectives({
      capabilities: low.length === 0 ? [] : [{ name: 'CAP_NET_BIND_SERVICE', why: `listen on ${low.map((l) => l.value).join(', ')} (a port below 1024)` }],
      extraAddressFamilies: [],
      readWritePaths: ownState
        ? []
        : [
            { path: o.dataDir, why: 'Its data directory (--data): CA, database, admin.token.' },
            { path: `-${o.masterKeyFile}`, why: 'The master key beside it (made at install; read at start).' },
          ],
      needsHome: [o.programs.node, o.programs.dockfleet, o.dataDir].some(underHome),
      systemdVersion: o.systemdVersion,
    }),
  ];
  return renderUnit({
    header: [`${HUB_UNIT}: the dockfleet hub (control plane).`, 'Written by `dockfleet hub install`; removed by `dockfleet hub uninstall`.', ...LEFT_OUT],
    unit: [
      { key: 'Description', value: 'dockfleet hub (control plane)', why: 'What systemctl status shows.' },
      { key: 'Wants', value: 'network-online.target', why: 'It listens on the network and may reach an ACME server: wait for the network.' },
      { key: 'After', value: 'network-online.target', why: 'Start after it.' },
      ...restart.unit,
    ],
    service,
    install: [{ key: 'WantedBy', value: 'multi-user.target', why: 'Started at every boot once enabled.' }],
  });
}
