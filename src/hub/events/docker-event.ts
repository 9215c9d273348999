/**
 * One line of the Docker Engine's `GET /events` stream, read into a FleetEvent. Foreign input:
 * anything that is not an object with a Type and an Action is refused (null), and only a few
 * short attributes are kept.
 */
import type { FleetEvent } from '../../protocol/fleet-events.ts';

const KEPT_ATTRIBUTES = ['image', 'exitCode', 'signal', 'container', 'driver', 'type'];
const MAX_TEXT = 300;

function text(v: unknown): string {
  return typeof v === 'string' ? v.slice(0, MAX_TEXT) : '';
}

export function fromDockerEvent(node: string, raw: unknown, now = Date.now()): Omit<FleetEvent, 'seq'> | null {
  if (!raw || typeof raw !== 'object') return null;
  const r = raw as Record<string, unknown>;
  const type = text(r.Type);
  const action = text(r.Action ?? r.status);
  if (!type || !action) return null;
  const actor = (r.Actor && typeof r.Actor === 'object' ? r.Actor : {}) as { ID?: unknown; Attributes?: unknown };
  const attrs = (actor.Attributes && typeof actor.Attributes === 'object' ? actor.Attributes : {}) as Record<string, unknown>;
  const id = text(actor.ID ?? r.id);
  const nanos = typeof r.timeNano === 'number' ? r.timeNano : null;
  const secs = typeof r.time === 'number' ? r.time : null;
  const time = nanos !== null ? Math.round(nanos / 1e6) : secs !== null ? secs * 1000 : now;
  const detail: Record<string, string> = {};
  for (const k of KEPT_ATTRIBUTES) {
    const v = text(attrs[k]);
    if (v) detail[k] = v;
  }
  // Containers and networks have a name attribute; images and volumes are named by their ID.
  const name = text(attrs.name) || id;
  return { node, time, type, action, id, name, detail };
}
