/**
 * How a user's global role and its node grants combine into a role on one node, shared by the
 * hub (which enforces it) and the UI (which decides which buttons to offer), so the two cannot
 * drift apart. Pure: no Node-only imports.
 * - The global role (admin, operator, viewer) applies to every node; null for a *scoped* user
 *   (a "customer"), who sees only the nodes its grants cover.
 * - A grant names one node, or matches every node whose label `key` equals `value`.
 * - On a node, the highest of the global role and the covering grants' roles applies: grants
 *   only ever add rights.
 */

export type NodeRole = 'admin' | 'operator' | 'viewer';

/** One grant as both sides see it: a node by name, or a label key/value; never a secret. */
export interface NodeGrant {
  node: string | null;
  labelKey: string | null;
  labelValue: string | null;
  role: 'operator' | 'viewer';
}

const RANK: Record<NodeRole, number> = { viewer: 1, operator: 2, admin: 3 };

/** The role on `node`, or null when the node is out of sight. `labelsOf` is called at most once,
 * and only when a label grant needs it (so callers may read labels live and lazily). */
export function roleOnNode(globalRole: NodeRole | null, grants: readonly NodeGrant[], node: string, labelsOf: () => Readonly<Record<string, string>> | undefined): NodeRole | null {
  let best = globalRole;
  if (grants.length === 0) return best;
  let labels: Readonly<Record<string, string>> | undefined | null = null;
  for (const g of grants) {
    let covers = g.node === node;
    if (!covers && g.labelKey !== null) {
      if (labels === null) labels = labelsOf() ?? {};
      covers = labels[g.labelKey] === g.labelValue;
    }
    if (covers && (best === null || RANK[g.role] > RANK[best])) best = g.role;
  }
  return best;
}

/** Whether a role may change things (operator or admin); viewers and out-of-sight nodes may not. */
export function roleMayChange(role: NodeRole | null): boolean {
  return role === 'operator' || role === 'admin';
}
