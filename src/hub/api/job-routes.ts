/** Jobs over REST: the history per node and per stack (newest first), and one job with its
 * steps, timings and log lines. Anyone signed in may read (viewers too); jobs are filed by the
 * stack routes, never here. Secrets are never part of an answer. An admin or operator attaches
 * the signed intent of a job awaiting one (issue 13), `POST /api/v1/jobs/ID/intent {intent}`, or
 * declines to sign it, `POST /api/v1/jobs/ID/decline {reason}` (it fails at once). */
import type { Hono } from 'hono';
import { z } from 'zod';
import { DockfleetError } from '../../protocol/errors.ts';
import { JOB_ID } from '../../protocol/jobs.ts';
import { apiJobDetailView, apiJobView, jobDeclineBody, jobIntentBody } from '../../protocol/stack-api.ts';
import { describeRoutes } from '../openapi/operations.ts';
import type { Context } from 'hono';
import type { ZodType } from 'zod';
import type { AuthVariables } from '../auth/rest-auth.ts';
import type { JobQueue } from '../jobs/job-queue.ts';
import { apiJob, apiJobDetail } from '../jobs/job-views.ts';

const jobsQuery = z.object({
  node: z.string().min(1).max(100).optional(),
  stack: z.string().min(1).max(100).optional(),
  limit: z.coerce.number().int().min(1).max(1000).default(100),
});

describeRoutes('jobs', [
  { method: 'get', path: '/api/v1/jobs', summary: 'Jobs, newest first, by node or stack', query: jobsQuery, responses: { 200: z.array(apiJobView) } },
  { method: 'post', path: '/api/v1/jobs/{id}/intent', summary: 'Attach the signed intent of a job awaiting one (admin or operator)', body: jobIntentBody, responses: { 200: apiJobView } },
  { method: 'post', path: '/api/v1/jobs/{id}/decline', summary: 'Decline to sign a job: it fails at once (admin or operator)', body: jobDeclineBody, responses: { 200: apiJobView } },
  { method: 'get', path: '/api/v1/jobs/{id}', summary: 'One job with its steps, timings and log lines', responses: { 200: apiJobDetailView } },
]);

export function jobRoutes(app: Hono<{ Variables: AuthVariables }>, jobs: JobQueue): void {
  app.get('/api/v1/jobs', async (c) => {
    const parsed = jobsQuery.safeParse(c.req.query());
    if (!parsed.success) {
      const issue = parsed.error.issues[0];
      throw new DockfleetError('validation_failed', `${issue?.path.join('.') || 'query'}: ${issue?.message ?? 'invalid'}`);
    }
    return c.json((await jobs.list(parsed.data)).map(apiJob));
  });

  app.post('/api/v1/jobs/:id/intent', async (c) => {
    const { id, body } = await signingCall(c, jobIntentBody);
    return c.json(apiJob(await jobs.attachIntent(id, body.intent)));
  });

  app.post('/api/v1/jobs/:id/decline', async (c) => {
    const { id, body } = await signingCall(c, jobDeclineBody);
    return c.json(apiJob(await jobs.decline(id, body.reason)));
  });

  app.get('/api/v1/jobs/:id', async (c) => {
    const id = c.req.param('id');
    const job = JOB_ID.test(id) ? await jobs.get(id) : null;
    if (!job) throw new DockfleetError('not_found', `no job ${id}`);
    return c.json(apiJobDetail(job));
  });
}

/** A signing call's job id and body, for an admin or operator. */
async function signingCall<T>(c: Context<{ Variables: AuthVariables }>, schema: ZodType<T>): Promise<{ id: string; body: T }> {
  const role = c.get('principal').access.globalRole;
  if (role !== 'admin' && role !== 'operator') throw new DockfleetError('forbidden', 'signing jobs needs an admin or operator');
  const id = c.req.param('id') ?? '';
  if (!JOB_ID.test(id)) throw new DockfleetError('not_found', `no job ${id}`);
  let raw: unknown;
  try {
    raw = await c.req.json();
  } catch {
    throw new DockfleetError('validation_failed', 'the body is not JSON');
  }
  const parsed = schema.safeParse(raw);
  if (!parsed.success) throw new DockfleetError('validation_failed', `${parsed.error.issues[0]?.path.join('.') || 'body'}: ${parsed.error.issues[0]?.message ?? 'invalid'}`);
  return { id, body: parsed.data };
}
