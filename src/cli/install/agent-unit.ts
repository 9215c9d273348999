/**
 * The agent's systemd unit: `dockfleet agent` against an identity already enrolled into its state
 * directory (so no enrollment code is ever written into the unit), in the sandbox of
 * hardening.ts, with the few rights an agent needs on top: its state, the engine's volumes.
 */
import { hardeningDirectives, LEFT_OUT, restartDirectives, underHome } from './hardening.ts';
import type { ProgramPaths } from './program-paths.ts';
import { execLine, renderUnit, type Directive } from './unit-file.ts';

export const AGENT_UNIT = 'dockfleet-agent.service';
/** StateDirectory=dockfleet-agent: systemd makes it, keeps it 0700 and leaves it writable. */
export const AGENT_STATE_NAME = 'dockfleet-agent';
export const AGENT_STATE_DIR = `/var/lib/${AGENT_STATE_NAME}`;

export interface AgentUnitOptions {
  programs: ProgramPaths;
  hubUrl: string;
  /** Absolute; AGENT_STATE_DIR unless --state said otherwise. */
  stateDir: string;
  /** unix:///path/to/docker.sock */
  dockerHost: string;
  /** Given with --policy; null: the agent's default (/etc/dockfleet/agent-policy.json). */
  policyFile: string | null;
  /** The engine's data root (docker info's DockerRootDir), whose volumes/ the agent reads and writes. */
  dockerRoot: string;
  /** Host paths its policy's backups section writes restic repositories under (repositoryPaths, or a path repository). */
  backupPaths: readonly string[];
  logLevel: string | null;
  systemdVersion: number | null;
}

export function agentUnitText(o: AgentUnitOptions): string {
  const socket = o.dockerHost.replace(/^unix:\/\//, '');
  const argv = [o.programs.node, o.programs.dockfleet, 'agent', '--hub', o.hubUrl, '--state', o.stateDir, '--docker', o.dockerHost];
  if (o.policyFile !== null) argv.push('--policy', o.policyFile);
  if (o.logLevel !== null) argv.push('--log-level', o.logLevel);
  const ownState = o.stateDir === AGENT_STATE_DIR;
  const restart = restartDirectives(o.systemdVersion);
  const state: Directive[] = ownState
    ? [
        {
          key: 'StateDirectory',
          value: AGENT_STATE_NAME,
          why: `Its identity (pinned hub CA, private key), audit log and job ledger: ${AGENT_STATE_DIR}, made by systemd, writable despite ProtectSystem.`,
        },
        { key: 'StateDirectoryMode', value: '0700', why: 'Its private key is in there: root alone may list it.' },
      ]
    : [];
  const service: Directive[] = [
    { key: 'Type', value: 'exec', why: 'Started once the program runs (a missing node or dockfleet fails the start, visibly).' },
    { key: 'ExecStart', value: execLine(argv), why: 'Enrolled at install: the state directory holds the identity, so no enrollment code is here.' },
    ...restart.service,
    ...state,
    ...hardeningDirectives({
      capabilities: [
        { name: 'CAP_DAC_OVERRIDE', why: 'read and write files in Docker volumes whoever owns them (volume files, backups, restores)' },
        { name: 'CAP_DAC_READ_SEARCH', why: 'walk volume directories that only their owner may search' },
        { name: 'CAP_CHOWN', why: 'a file written into a volume keeps the owner the container gave it' },
        { name: 'CAP_FOWNER', why: 'set the mode of such a file (it belongs to the container user, not to root)' },
      ],
      extraAddressFamilies: [{ name: 'AF_NETLINK', why: "list this host's own addresses (os.networkInterfaces), which the API policy checks build contexts against" }],
      readWritePaths: [
        ...(ownState ? [] : [{ path: o.stateDir, why: 'Its state directory (--state): identity, audit log, job ledger.' }]),
        { path: `-${o.dockerRoot}/volumes`, why: "The engine's volumes, which volume files, backups and restores read and write (skipped if absent)." },
        ...o.backupPaths.map((path) => ({
          path: `-${path}`,
          why: "Where its policy's backups keep restic repositories on this host (skipped if absent; reinstall after changing the policy's paths).",
        })),
      ],
      needsHome: [o.programs.node, o.programs.dockfleet, o.stateDir, socket, o.policyFile ?? ''].some(underHome),
      systemdVersion: o.systemdVersion,
    }),
  ];
  return renderUnit({
    header: [
      `${AGENT_UNIT}: the dockfleet agent beside this host's Docker engine.`,
      'Written by `dockfleet agent install`; removed by `dockfleet agent uninstall`.',
      `The engine's socket (${socket}) stays reachable under ProtectSystem=strict: connecting to a unix`,
      'socket is not a write to the file system, so a read-only mount does not stop it.',
      ...LEFT_OUT,
    ],
    unit: [
      { key: 'Description', value: 'dockfleet agent (dials out to the hub; listens on no port)', why: 'What systemctl status shows.' },
      { key: 'Wants', value: 'network-online.target', why: 'It dials the hub: wait for the network to be up …' },
      { key: 'After', value: 'network-online.target docker.service', why: '… and for the engine, when it is a systemd service too.' },
      ...restart.unit,
    ],
    service,
    install: [{ key: 'WantedBy', value: 'multi-user.target', why: 'Started at every boot once enabled.' }],
  });
}
