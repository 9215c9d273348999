/**
 * What one principal may do on each node. How global roles and grants combine:
 * - A user's global role (admin, operator, viewer) applies to every node, as before grants.
 * - A grant gives a role (operator or viewer) on the nodes it covers: one node by name, or
 *   every node carrying a label `key=value`. On a node, the higher of the global role and the
 *   grants' roles applies: grants only ever add rights.
 * - A *scoped* user (a "customer") has no global role at all: it sees and touches only the
 *   nodes its grants cover, and nothing fleet-wide (stacks, jobs, routes, audit, users).
 * Labels are read live at each check, so a node gaining or losing a label changes what a
 * label grant covers at once. A node a principal may not see is reported as absent
 * (`node_not_found`), never as forbidden, so names of other people's hosts do not leak.
 */
import { DockfleetError } from '../../protocol/errors.ts';
import type { GrantRecord } from '../../store/access-store.ts';
import type { UserRole } from '../../store/store.ts';

export type LabelsOf = (node: string) => Record<string, string>;

const RANK: Record<UserRole, number> = { viewer: 1, operator: 2, admin: 3 };

export class NodeAccess {
  /** The role on every node; null for a scoped user. */
  readonly globalRole: UserRole | null;
  readonly #grants: readonly GrantRecord[];
  readonly #labelsOf: LabelsOf;

  constructor(globalRole: UserRole | null, grants: readonly GrantRecord[], labelsOf: LabelsOf) {
    this.globalRole = globalRole;
    this.#grants = grants;
    this.#labelsOf = labelsOf;
  }

  /** Everything on every node, for the hub's own admin token and tests. */
  static everything(role: UserRole): NodeAccess {
    return new NodeAccess(role, [], () => ({}));
  }

  get scoped(): boolean {
    return this.globalRole === null;
  }

  /** The principal's role on a node, or null when the node is out of its sight. */
  roleOn(node: string): UserRole | null {
    let best: UserRole | null = this.globalRole;
    if (this.#grants.length === 0) return best;
    let labels: Record<string, string> | null = null;
    for (const g of this.#grants) {
      let covers = g.node === node;
      if (!covers && g.labelKey !== null) {
        labels ??= this.#labelsOf(node);
        covers = labels[g.labelKey] === g.labelValue;
      }
      if (covers && (best === null || RANK[g.role] > RANK[best])) best = g.role;
    }
    return best;
  }

  canSee(node: string): boolean {
    return this.roleOn(node) !== null;
  }

  /** The node's role, or node_not_found (the same answer as for a node that does not exist). */
  requireSight(node: string): UserRole {
    const role = this.roleOn(node);
    if (role === null) throw new DockfleetError('node_not_found', `no node named ${node}`);
    return role;
  }

  /** For a change on the node: operator or admin there. */
  requireChange(node: string, who: string): void {
    const role = this.requireSight(node);
    if (role === 'viewer') throw new DockfleetError('forbidden', `user ${who} has the viewer role on ${node} and may only read there`);
  }

  /** For anything fleet-wide: refused to a scoped user. */
  requireFleetWide(who: string): void {
    if (this.scoped) throw new DockfleetError('forbidden', `user ${who} has access to granted nodes only`);
  }
}
