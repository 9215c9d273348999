/**
 * Which inventory sections an engine event can change. Pure, so the mapping is testable
 * without an engine. An event can change more than its own section: a network connect or
 * disconnect changes the containers list (NetworkSettings), and an image tagged, untagged or
 * deleted changes the `Image` a container is listed with.
 */
import type { InventorySection } from '../protocol/inventory.ts';

const OWN_SECTION: Record<string, InventorySection> = { container: 'containers', image: 'images', volume: 'volumes', network: 'networks' };
/** The event types the watcher subscribes to. */
export const WATCHED_EVENT_TYPES = Object.keys(OWN_SECTION);
/** Container actions that do not change what `containers/json` shows. */
const QUIET_CONTAINER_ACTIONS = /^(exec_|top$|attach$|detach$|resize$|export$|archive-path$|commit$|copy$|extract-to-dir$)/;
const CONTAINER_LIST_ACTIONS: Record<string, RegExp> = {
  network: /^(connect|disconnect)$/,
  image: /^(tag|untag|delete)$/,
};
/** A container that ended: the engine may report this before its list shows it (see settling in the watcher). */
const ENDED_ACTIONS = /^(die|stop)$/;

export interface TouchedSections {
  sections: InventorySection[];
  /** The id of a container that just ended, when the event says so. */
  ended: string | null;
}

export function sectionsTouchedBy(event: unknown): TouchedSections {
  const none: TouchedSections = { sections: [], ended: null };
  if (typeof event !== 'object' || event === null) return none;
  const { Type: type, Action: action, Actor: actor } = event as { Type?: unknown; Action?: unknown; Actor?: { ID?: unknown } };
  if (typeof type !== 'string' || typeof action !== 'string') return none;
  const own = OWN_SECTION[type];
  if (!own) return none;
  if (own === 'containers') {
    if (QUIET_CONTAINER_ACTIONS.test(action)) return none;
    const ended = ENDED_ACTIONS.test(action) && typeof actor?.ID === 'string' ? actor.ID : null;
    return { sections: ['containers'], ended };
  }
  const alsoContainers = CONTAINER_LIST_ACTIONS[type]?.test(action) ?? false;
  return { sections: alsoContainers ? [own, 'containers'] : [own], ended: null };
}
