/** Removing a stack from this host: its containers (stopped with their grace period), then the
 * networks it made; named volumes stay. The desired state says `removed`, so drift stays quiet. */
import { COMPOSE_LABELS } from '../../protocol/stacks.ts';
import type { ApplyContext, ApplyOutcome } from './apply-stack.ts';
import { observeContainers } from './observe-stack.ts';

export async function removeStack(ctx: ApplyContext, stack: string): Promise<ApplyOutcome> {
  const previous = await ctx.state.read(stack, 'desired');
  await ctx.step('remove containers', async () => {
    for (const c of await observeContainers(ctx.engine, stack)) {
      if (c.running) await ctx.engine.call('POST', `/containers/${c.id}/stop`, undefined, 120_000);
      const answer = await ctx.engine.call('DELETE', `/containers/${c.id}?force=1`);
      if (answer.status !== 204 && answer.status !== 404) throw new Error(`could not remove ${c.name}: ${answer.message}`);
      ctx.log(`removed ${c.name}`);
    }
  });
  await ctx.step('remove networks', async () => {
    const filters = encodeURIComponent(JSON.stringify({ label: [`${COMPOSE_LABELS.project}=${stack}`] }));
    for (const net of (await ctx.engine.must('GET', `/networks?filters=${filters}`)) as Array<{ Id: string; Name: string }>) {
      const answer = await ctx.engine.call('DELETE', `/networks/${net.Id}`);
      if (answer.status !== 204 && answer.status !== 404) throw new Error(`could not remove network ${net.Name}: ${answer.message}`);
    }
  });
  if (previous) await ctx.state.write(stack, 'desired', { ...previous, state: 'removed', updatedAt: Date.now() });
  return { ok: true, revision: 0 };
}
