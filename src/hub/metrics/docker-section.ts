/**
 * Which part of the Engine API a Docker call went to, as a metric label: a small fixed set, so
 * a path, a container id or an image name never becomes a label value (cardinality stays bounded).
 */

export const DOCKER_SECTIONS = ['containers', 'images', 'volumes', 'networks', 'exec', 'system', 'other'] as const;
export type DockerSection = (typeof DOCKER_SECTIONS)[number];

const VERSION_PREFIX = /^\/v\d+(?:\.\d+)?(?=\/|$)/;
/** First path segments that belong to the engine's system calls. */
const SYSTEM = new Set(['_ping', 'info', 'version', 'events', 'system']);
const DIRECT = new Set<DockerSection>(['containers', 'images', 'volumes', 'networks', 'exec']);

/** `/v1.43/containers/abc/json?all=1` → `containers`; `/_ping` → `system`; anything else → `other`. */
export function dockerSection(enginePath: string): DockerSection {
  const path = (enginePath.split('?')[0] ?? '').replace(VERSION_PREFIX, '');
  const first = path.split('/')[1] ?? '';
  if (DIRECT.has(first as DockerSection)) return first as DockerSection;
  if (first === 'build') return 'images';
  if (SYSTEM.has(first)) return 'system';
  return 'other';
}
