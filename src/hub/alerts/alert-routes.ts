/**
 * Alerts over REST. Anyone signed in may read incidents with their deliveries' state;
 * receivers are the admin's: list (targets shown as scheme and host only), add, change,
 * remove and test-send. Bodies are parsed by the REST app's `parse` (a bad one is a 400
 * `validation_failed` and changes nothing).
 */
import type { Context, Hono } from 'hono';
import { z } from 'zod';
import { DockfleetError } from '../../protocol/errors.ts';
import type { DeliveryRecord, IncidentRecord } from '../../store/alert-store.ts';
import type { AuthVariables } from '../auth/rest-auth.ts';
import { assertAdmin } from '../auth/principals.ts';
import { Alerts } from './alerts.ts';
import { receiverBody, receiverPatch } from './receivers.ts';
import { describeRoutes } from '../openapi/operations.ts';

const iso_ = z.string();
const sendOutcome = z.object({ ok: z.boolean(), status: z.number().int().nullable(), error: z.string().nullable() });
const receiverView = z.object({
  id: z.string(),
  name: z.string(),
  format: z.string(),
  target: z.string(),
  headerNames: z.array(z.string()),
  enabled: z.boolean(),
  createdAt: iso_,
  lastTest: sendOutcome.extend({ at: iso_ }).nullable(),
});
const incidentView = z.object({
  id: z.string(),
  key: z.string(),
  kind: z.string(),
  severity: z.string(),
  state: z.string(),
  node: z.string().nullable(),
  subject: z.string(),
  title: z.string(),
  detail: z.string(),
  openedAt: iso_.nullable(),
  updatedAt: iso_.nullable(),
  resolvedAt: iso_.nullable(),
  deliveries: z.array(
    z.object({
      receiver: z.string(),
      receiverId: z.string(),
      event: z.string(),
      state: z.string(),
      attempts: z.number().int(),
      nextAttemptAt: iso_.nullable(),
      lastStatus: z.number().int().nullable(),
      lastError: z.string().nullable(),
      sentAt: iso_.nullable(),
    }),
  ),
});

type Parse = <T>(c: Context, schema: z.ZodType<T>) => Promise<T>;
type App = Hono<{ Variables: AuthVariables }>;

const alertsQuery = z.object({ limit: z.coerce.number().int().min(1).max(500).default(100) });
const iso = (ms: number | null): string | null => (ms === null ? null : new Date(ms).toISOString());

function apiIncident(i: IncidentRecord, deliveries: DeliveryRecord[], names: Map<string, string>): Record<string, unknown> {
  return {
    id: i.id,
    key: i.key,
    kind: i.kind,
    severity: i.severity,
    state: i.state,
    node: i.node,
    subject: i.subject,
    title: i.title,
    detail: i.detail,
    openedAt: iso(i.openedAt),
    updatedAt: iso(i.updatedAt),
    resolvedAt: iso(i.resolvedAt),
    deliveries: deliveries
      .filter((d) => d.incidentId === i.id)
      .map((d) => ({
        receiver: names.get(d.receiverId) ?? d.receiverId,
        receiverId: d.receiverId,
        event: d.event,
        state: d.state,
        attempts: d.attempts,
        nextAttemptAt: iso(d.nextAt),
        lastStatus: d.lastStatus,
        lastError: d.lastError,
        sentAt: iso(d.sentAt),
      })),
  };
}

describeRoutes('alerts', [
  { method: 'get', path: '/api/v1/alerts', summary: "Recent incidents with their deliveries' state", query: alertsQuery, responses: { 200: z.array(incidentView) } },
  {
    method: 'get',
    path: '/api/v1/alert-receivers',
    summary: "Alert receivers (targets as scheme and host only) and each one's latest delivery (admin)",
    responses: {
      200: z.array(
        receiverView.extend({
          lastDelivery: z
            .object({ event: z.string(), state: z.string(), attempts: z.number().int(), lastStatus: z.number().int().nullable(), lastError: z.string().nullable(), at: iso_.nullable() })
            .nullable(),
        }),
      ),
    },
  },
  { method: 'post', path: '/api/v1/alert-receivers', summary: 'Add a receiver (admin)', body: receiverBody, responses: { 201: receiverView } },
  { method: 'patch', path: '/api/v1/alert-receivers/{id}', summary: 'Change a receiver (admin)', body: receiverPatch, responses: { 200: receiverView } },
  { method: 'delete', path: '/api/v1/alert-receivers/{id}', summary: 'Remove a receiver (admin)', responses: { 200: z.object({ id: z.string(), removed: z.literal(true) }) } },
  { method: 'post', path: '/api/v1/alert-receivers/{id}/test', summary: 'Send a made-up incident now and say what the receiver answered (admin)', responses: { 200: sendOutcome } },
]);

export function alertRoutes(app: App, alerts: Alerts, parse: Parse): void {
  const admin = (c: Context<{ Variables: AuthVariables }>): void => assertAdmin(c.get('principal'));

  app.get('/api/v1/alerts', async (c) => {
    const parsed = alertsQuery.safeParse(c.req.query());
    if (!parsed.success) throw new DockfleetError('validation_failed', `limit: ${parsed.error.issues[0]?.message ?? 'invalid'}`);
    await alerts.book.settled();
    const incidents = await alerts.store.recentIncidents(parsed.data.limit);
    const [deliveries, receivers] = await Promise.all([alerts.store.deliveriesOf(incidents.map((i) => i.id)), alerts.store.listReceivers()]);
    const names = new Map(receivers.map((r) => [r.id, r.name]));
    return c.json(incidents.map((i) => apiIncident(i, deliveries, names)));
  });

  app.get('/api/v1/alert-receivers', async (c) => {
    admin(c);
    const [views, recent] = await Promise.all([alerts.receivers.list(), alerts.store.recentDeliveries(500)]);
    // Each receiver's latest delivery: its health at a glance.
    return c.json(
      views.map((v) => {
        const last = recent.find((d) => d.receiverId === v.id) ?? null;
        return {
          ...v,
          lastDelivery: last && { event: last.event, state: last.state, attempts: last.attempts, lastStatus: last.lastStatus, lastError: last.lastError, at: iso(last.sentAt ?? last.createdAt) },
        };
      }),
    );
  });

  app.post('/api/v1/alert-receivers', async (c) => {
    admin(c);
    return c.json(await alerts.receivers.create(await parse(c, receiverBody)), 201);
  });

  app.patch('/api/v1/alert-receivers/:id', async (c) => {
    admin(c);
    return c.json(await alerts.receivers.update(c.req.param('id'), await parse(c, receiverPatch)));
  });

  app.delete('/api/v1/alert-receivers/:id', async (c) => {
    admin(c);
    await alerts.receivers.remove(c.req.param('id'));
    return c.json({ id: c.req.param('id'), removed: true });
  });

  /** Sends a made-up incident now and says what the receiver answered; the outcome is kept as the
   * receiver's latest test (no incident or delivery is stored). */
  app.post('/api/v1/alert-receivers/:id/test', async (c) => {
    admin(c);
    const receiver = await alerts.receivers.require(c.req.param('id'));
    const outcome = await alerts.worker.send(receiver, 'test', Alerts.testIncident());
    await alerts.store.recordReceiverTest(receiver.id, { at: Date.now(), ...outcome });
    return c.json(outcome);
  });
}
