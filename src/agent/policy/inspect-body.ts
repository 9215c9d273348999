/**
 * Body checks for the requests whose bodies can reach past a container onto the host:
 * container create, exec create, volume create. Each returns null or a refusal phrase
 * ("<what> (<rule> in <source>)"); AgentPolicy turns that into the full message. Bodies are
 * read as the engine reads them (see go-fields.ts), and HostConfig fields are checked both
 * under "HostConfig" and at the top level, which the engine still decodes as a deprecated
 * embedded HostConfig.
 *
 * These checks read text only. Where host paths lead — symlinks, /proc magic links, named
 * volumes whose options bind a host path (made through the agent or not), VolumesFrom — is
 * judged afterwards by the host pass (policy-gate.ts, host-path-judge.ts), which asks the
 * engine and resolves paths on the host.
 *
 * Not checked (documented limits): `container:<id>` namespace modes (they borrow from
 * another container, which only someone on the host could have made unsafe), networks named
 * by id rather than "host", swarm specs.
 */
import { DEFAULT_POLICY, type PolicyAllow } from './policy-file.ts';
import { MALFORMED, flagSet, isRecord, objectField } from './go-fields.ts';
import { inspectHostConfig } from './inspect-host-config.ts';
import { malformed, sayer } from './refusal-text.ts';
import { checkVolumeDriverOptions } from './volume-driver-options.ts';

/** POST /containers/create. */
export function inspectCreate(body: unknown, allow: PolicyAllow, source: string = DEFAULT_POLICY.source): string | null {
  const say = sayer(source);
  if (!isRecord(body)) return malformed(say, 'container config (not a JSON object)');
  const topLevel = inspectHostConfig(body, allow, say, '');
  if (topLevel) return topLevel;
  const hostConfig = objectField(body, 'HostConfig');
  if (hostConfig === MALFORMED) return malformed(say, 'HostConfig');
  const inner = hostConfig && inspectHostConfig(hostConfig, allow, say, 'HostConfig.');
  if (inner) return inner;
  if (allow.hostNamespaces) return null;
  const networking = objectField(body, 'NetworkingConfig');
  if (networking === MALFORMED) return malformed(say, 'NetworkingConfig');
  const endpoints = networking && objectField(networking, 'EndpointsConfig');
  if (endpoints === MALFORMED) return malformed(say, 'NetworkingConfig.EndpointsConfig');
  if (endpoints && Object.keys(endpoints).some((name) => name.trim().toLowerCase() === 'host')) {
    return say('sharing the host\'s namespaces, NetworkingConfig.EndpointsConfig["host"]', 'allow.hostNamespaces is false');
  }
  return null;
}

/** POST /containers/ID/exec. */
export function inspectExecCreate(body: unknown, allow: PolicyAllow, source: string = DEFAULT_POLICY.source): string | null {
  const say = sayer(source);
  if (!isRecord(body)) return malformed(say, 'exec config (not a JSON object)');
  if (!allow.privileged && flagSet(body, 'Privileged')) return say('privileged exec sessions', 'allow.privileged is false');
  return null;
}

/** POST /volumes/create. */
export function inspectVolumeCreate(body: unknown, allow: PolicyAllow, source: string = DEFAULT_POLICY.source): string | null {
  const say = sayer(source);
  if (!isRecord(body)) return malformed(say, 'volume config (not a JSON object)');
  const opts = objectField(body, 'DriverOpts');
  if (opts === MALFORMED) return malformed(say, 'DriverOpts');
  return opts ? checkVolumeDriverOptions(opts, allow, say, 'DriverOpts') : null;
}
