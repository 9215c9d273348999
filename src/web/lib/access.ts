/**
 * What the signed-in user may do on one node, for deciding which buttons a page offers. The
 * rule (global role + grants + the node's labels) is protocol/node-roles.ts, the same function
 * the hub enforces with, so a button shows exactly when the hub would allow the action. Labels
 * are read from the live feed's node list at the moment of the check (a label added on the hub
 * reaches the page with the next `nodes` event). Fleet-wide actions (stacks, node labels, people,
 * alert receivers) do not come here: they keep the global role.
 */
import { roleMayChange, roleOnNode, type NodeRole } from '../../protocol/node-roles.ts';
import { fleet } from './live.ts';
import type { Me, NodeView } from './types.ts';

type NodeRef = string | Pick<NodeView, 'name' | 'labels'>;

function labelsOf(node: NodeRef): Readonly<Record<string, string>> | undefined {
  if (typeof node !== 'string') return node.labels;
  return fleet.get().nodes?.find((n) => n.name === node)?.labels;
}

/** The user's role on the node, or null when the node is not in its sight. */
export function roleOn(me: Me, node: NodeRef): NodeRole | null {
  const name = typeof node === 'string' ? node : node.name;
  return roleOnNode(me.scoped ? null : me.role, me.grants ?? [], name, () => labelsOf(node));
}

/** Whether the user may change things on the node (stop, run, edit, terminal, files): operator or admin there. */
export function canChange(me: Me, node: NodeRef): boolean {
  return roleMayChange(roleOn(me, node));
}

/** Whether the user may change things on at least one node it sees (for "Run a container" and the like). */
export function canChangeSomewhere(me: Me, nodes: readonly NodeRef[]): boolean {
  return nodes.some((n) => canChange(me, n));
}
