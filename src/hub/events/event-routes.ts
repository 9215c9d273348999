/**
 * `GET /api/v1/events?node=&type=&action=&name=&limit=` (the newest first, from the hub's
 * bounded ring) and `GET /api/v1/events/stream?…` (Server-Sent Events: each new event that
 * matches, as `event: docker`; a client that reconnects with Last-Event-ID gets what it
 * missed from the ring first). A client that cannot keep up is dropped, not buffered.
 * A scoped user ("customer") gets only the events of the nodes its grants cover; its stream
 * ends when its access changes (the browser reconnects under the new access).
 */
import type { Hono } from 'hono';
import { streamSSE } from 'hono/streaming';
import { z } from 'zod';
import type { FleetEvents } from './fleet-events.ts';
import type { FleetEvent } from '../../protocol/fleet-events.ts';
import { matchesEvent, type EventFilter } from './event-ring.ts';
import { watchAccess } from '../access/access-watch.ts';
import type { AuthVariables } from '../auth/rest-auth.ts';
import type { NodeAccess } from '../access/node-access.ts';
import { describeRoutes } from '../openapi/operations.ts';

const MAX_PENDING = 1_000;

const filterQuery = z.object({
  node: z.string().max(63).optional(),
  type: z.string().max(32).optional(),
  action: z.string().max(64).optional(),
  name: z.string().max(255).optional(),
  limit: z.coerce.number().int().min(1).max(5_000).optional(),
  after: z.coerce.number().int().min(0).optional(),
});

const fleetEvent = z.object({
  seq: z.number().int(),
  node: z.string(),
  time: z.number(),
  type: z.string(),
  action: z.string(),
  id: z.string(),
  name: z.string(),
  detail: z.record(z.string(), z.string()),
});

describeRoutes('events', [
  { method: 'get', path: '/api/v1/events', summary: "The fleet's Docker events, newest first", query: filterQuery, responses: { 200: z.array(fleetEvent) } },
  { method: 'get', path: '/api/v1/events/stream', summary: 'New Docker events as Server-Sent Events (`event: docker`, data: one event)', query: filterQuery, responses: { 200: 'text/event-stream' } },
]);

type Parse = <T>(schema: z.ZodType<T>, value: unknown) => T;

function toFilter(q: z.infer<typeof filterQuery>): EventFilter {
  const f: EventFilter = {};
  for (const k of ['node', 'type', 'action', 'name'] as const) if (q[k]) f[k] = q[k];
  if (q.limit !== undefined) f.limit = q.limit;
  if (q.after !== undefined) f.after = q.after;
  return f;
}

/** Global users see every node's events; a scoped user only its granted nodes' (labels read live). */
function visibleTo(access: NodeAccess): EventFilter {
  return access.scoped ? { visible: (node) => access.canSee(node) } : {};
}

export function eventRoutes(app: Hono<{ Variables: AuthVariables }>, events: FleetEvents, parse: Parse): void {
  app.get('/api/v1/events', (c) => c.json(events.query({ limit: 500, ...toFilter(parse(filterQuery, c.req.query())), ...visibleTo(c.get('principal').access) })));

  app.get('/api/v1/events/stream', (c) => {
    const filter = { ...toFilter(parse(filterQuery, c.req.query())), ...visibleTo(c.get('principal').access) };
    const principal = c.get('principal');
    const reauthenticate = c.get('reauthenticate');
    const lastId = Number(c.req.header('last-event-id'));
    return streamSSE(c, async (stream) => {
      const pending: FleetEvent[] = [];
      let wake: (() => void) | null = null;
      let dropped = false;
      const { limit: _limit, after: _after, ...live } = filter;
      const listener = (e: FleetEvent): void => {
        if (!matchesEvent(e, live)) return;
        if (pending.length >= MAX_PENDING) dropped = true;
        else pending.push(e);
        wake?.();
      };
      events.on('event', listener);
      stream.onAbort(() => wake?.());
      let accessChanged = false;
      const stopWatch = watchAccess(principal, reauthenticate, () => {
        accessChanged = true;
        wake?.();
      });
      try {
        if (Number.isInteger(lastId) && lastId > 0) pending.unshift(...events.query({ ...live, after: lastId }).reverse());
        await stream.writeSSE({ event: 'ready', data: '{}' });
        while (!stream.aborted && !dropped && !accessChanged) {
          if (pending.length === 0) {
            await new Promise<void>((resolve) => {
              wake = resolve;
              setTimeout(resolve, 15_000).unref();
            });
            wake = null;
            if (pending.length === 0 && !stream.aborted) await stream.write(': keepalive\n\n');
            continue;
          }
          const e = pending.shift()!;
          await stream.writeSSE({ event: 'docker', id: String(e.seq), data: JSON.stringify(e) });
        }
      } finally {
        stopWatch();
        events.off('event', listener);
      }
    });
  });
}
