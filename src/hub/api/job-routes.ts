/** Jobs over REST: the history per node and per stack (newest first), and one job with its
 * steps, timings and log lines. Anyone signed in may read (viewers too); jobs are filed by the
 * stack routes, never here. Secrets are never part of an answer. */
import type { Hono } from 'hono';
import { z } from 'zod';
import { DockfleetError } from '../../protocol/errors.ts';
import { JOB_ID } from '../../protocol/jobs.ts';
import type { AuthVariables } from '../auth/rest-auth.ts';
import type { JobQueue } from '../jobs/job-queue.ts';
import { apiJob, apiJobDetail } from '../jobs/job-views.ts';

const jobsQuery = z.object({
  node: z.string().min(1).max(100).optional(),
  stack: z.string().min(1).max(100).optional(),
  limit: z.coerce.number().int().min(1).max(1000).default(100),
});

export function jobRoutes(app: Hono<{ Variables: AuthVariables }>, jobs: JobQueue): void {
  app.get('/api/v1/jobs', async (c) => {
    const parsed = jobsQuery.safeParse(c.req.query());
    if (!parsed.success) {
      const issue = parsed.error.issues[0];
      throw new DockfleetError('validation_failed', `${issue?.path.join('.') || 'query'}: ${issue?.message ?? 'invalid'}`);
    }
    return c.json((await jobs.list(parsed.data)).map(apiJob));
  });

  app.get('/api/v1/jobs/:id', async (c) => {
    const id = c.req.param('id');
    const job = JOB_ID.test(id) ? await jobs.get(id) : null;
    if (!job) throw new DockfleetError('not_found', `no job ${id}`);
    return c.json(apiJobDetail(job));
  });
}
