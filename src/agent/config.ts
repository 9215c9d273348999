/** The agent's configuration: defaults, then flags; validated once, frozen. */
import { resolve } from 'node:path';

export interface AgentConfig {
  readonly hubUrl: URL | null;
  readonly code: string | null;
  readonly stateDir: string;
  readonly dockerHost: string;
  readonly name: string | null;
  /** This host's policy for the Docker API; never settable from the hub. */
  readonly policyFile: string;
}

export interface AgentFlags {
  hub?: string | undefined;
  code?: string | undefined;
  state?: string | undefined;
  docker?: string | undefined;
  name?: string | undefined;
  policy?: string | undefined;
}

export const AGENT_DEFAULTS = {
  state: './agent-state',
  docker: 'unix:///var/run/docker.sock',
  policy: '/etc/dockfleet/agent-policy.json',
} as const;

export function agentConfigFrom(flags: AgentFlags): AgentConfig {
  let hubUrl: URL | null = null;
  if (flags.hub !== undefined) {
    try {
      hubUrl = new URL(flags.hub);
    } catch {
      throw new Error(`--hub must be a URL like https://hub.example:7443, got "${flags.hub}"`);
    }
    if (hubUrl.protocol !== 'https:') throw new Error(`--hub must use https://, got "${flags.hub}"`);
  }
  const docker = flags.docker ?? AGENT_DEFAULTS.docker;
  if (!/^unix:\/\/\/./.test(docker)) throw new Error(`--docker must be unix:///path/to/docker.sock, got "${docker}"`);
  if (flags.name !== undefined && !/^[a-z0-9][a-z0-9-]{0,62}$/.test(flags.name)) {
    throw new Error(`--name must be 1–63 lowercase letters, digits or dashes, got "${flags.name}"`);
  }
  return Object.freeze({
    hubUrl,
    code: flags.code ?? null,
    stateDir: resolve(flags.state ?? AGENT_DEFAULTS.state),
    dockerHost: docker,
    name: flags.name ?? null,
    policyFile: resolve(flags.policy ?? AGENT_DEFAULTS.policy),
  });
}
