/**
 * What a node's local policy allows, for pages that offer an action only some hosts permit:
 *   if (!policyAllows(node, 'exec')) → disable the terminal and show policyRefusal(node, 'exec').
 * A node whose agent has not reported its policy yet counts as allowing: the agent still refuses
 * on its own, with its reason, so the UI only hides what it knows is refused.
 */
import type { SummarySection } from '../../protocol/policy-summary.ts';
import type { NodeView } from './types.ts';

export type PolicySection = SummarySection;

/** What each section lets people do on the node, in words ("This host allows: …"). */
export const SECTION_WORDS: Readonly<Record<PolicySection, string>> = {
  containers: 'containers',
  exec: 'terminals',
  archive: 'container files',
  images: 'images',
  imageExport: 'image export',
  build: 'image builds',
  volumes: 'volumes',
  networks: 'networks',
  distribution: 'registry lookups',
  events: 'engine events',
  plugins: 'plugins',
  swarm: 'swarm',
  volumeFiles: 'volume files',
  ingress: 'ingress routes',
};

type NodeLike = Pick<NodeView, 'name' | 'policy'> | null | undefined;

/** False only when the node's reported policy turns `section` off. */
export function policyAllows(node: NodeLike, section: PolicySection): boolean {
  return node?.policy?.sections[section] ?? true;
}

/** Why `section` is refused on this node, in a sentence; null when it is allowed (or not known). */
export function policyRefusal(node: NodeLike, section: PolicySection): string | null {
  if (!node || policyAllows(node, section)) return null;
  return `The policy of ${node.name} does not allow ${SECTION_WORDS[section]} (sections.${section} is off in its policy file).`;
}

/** The sections a node allows and refuses, in words, for the node card. */
export function policyOverview(node: NodeLike): { allows: string[]; refuses: string[] } | null {
  const p = node?.policy;
  if (!p) return null;
  const allows: string[] = [];
  const refuses: string[] = [];
  for (const [section, words] of Object.entries(SECTION_WORDS) as Array<[PolicySection, string]>) {
    (p.sections[section] ? allows : refuses).push(words);
  }
  return { allows, refuses };
}

/** The allow flags worth a mention: what the policy lets containers do beyond the defaults. */
export function policyExtras(node: NodeLike): string[] {
  const a = node?.policy?.allow;
  if (!a) return [];
  const out: string[] = [];
  out.push(a.bindMounts === null ? 'bind mounts from any host path' : a.bindMounts.length === 0 ? 'no bind mounts' : `bind mounts under ${a.bindMounts.join(', ')}`);
  if (a.privileged) out.push('privileged containers');
  if (a.hostNamespaces) out.push('host namespaces');
  if (a.devices) out.push('devices');
  if (a.dockerSocket) out.push('the Docker socket');
  if (a.capabilities.length > 0) out.push(`capabilities ${a.capabilities.join(', ')}`);
  if (a.remoteBuildContexts) out.push('remote build contexts');
  return out;
}
