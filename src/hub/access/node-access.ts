/**
 * What one principal may do on each node. How global roles and grants combine:
 * - A user's global role (admin, operator, viewer) applies to every node, as before grants.
 * - A grant gives a role (operator or viewer) on the nodes it covers: one node by name, or
 *   every node carrying a label `key=value`. On a node, the higher of the global role and the
 *   grants' roles applies: grants only ever add rights.
 * - A *scoped* user (a "customer") has no global role at all: it sees and touches only the
 *   nodes its grants cover, and nothing fleet-wide (stacks, jobs, routes, audit, users).
 * The combination rule itself lives in protocol/node-roles.ts, shared with the UI.
 * Labels are read live at each check, so a node gaining or losing a label changes what a
 * label grant covers at once. A node a principal may not see is reported as absent
 * (`node_not_found`), never as forbidden, so names of other people's hosts do not leak.
 */
import { DockfleetError } from '../../protocol/errors.ts';
import { roleOnNode } from '../../protocol/node-roles.ts';
import type { GrantRecord } from '../../store/access-store.ts';
import type { UserRole } from '../../store/store.ts';

export type LabelsOf = (node: string) => Record<string, string>;

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
    return roleOnNode(this.globalRole, this.#grants, node, () => this.#labelsOf(node));
  }

  /** The grants behind this access (node or label key/value and role; no secrets), for `/api/v1/me`. */
  get grants(): readonly GrantRecord[] {
    return this.#grants;
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
