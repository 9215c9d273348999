/**
 * The health gate: after an apply, every service's container must be healthy by its Docker
 * healthcheck or, without one, running with no restart for `stableMs`, all within
 * `deadlineMs`. A restart, an exit or an unhealthy verdict fails it at once (a crash loop
 * never waits for the deadline). The same watch serves depends_on conditions.
 */
import type { HealthGate } from '../../protocol/stacks.ts';
import type { StackEngine } from './stack-engine.ts';

const POLL_MS = 200;

export interface GateMember {
  service: string;
  id: string;
  /** restart: "no" with exit code 0 counts as done (a one-shot service). */
  oneShotOk: boolean;
}

export type GateVerdict = { ok: true } | { ok: false; service: string; id: string; reason: string };

interface Baseline {
  startedAt: string;
  restarts: number;
  since: number;
}

type Look = { kind: 'pass' } | { kind: 'wait' } | { kind: 'fail'; reason: string };

/** One look at a container against its baseline (the first look sets it). */
async function look(engine: StackEngine, member: GateMember, base: Map<string, Baseline>, stableMs: number, now: number): Promise<Look> {
  const info = await engine.inspect('containers', member.id);
  if (!info) return { kind: 'fail', reason: 'its container is gone' };
  const state = info.State ?? {};
  const startedAt = String(state.StartedAt ?? '');
  const restarts = Number(info.RestartCount ?? 0);
  let b = base.get(member.id);
  if (!b) {
    b = { startedAt, restarts, since: now };
    base.set(member.id, b);
  }
  if (state.Status === 'exited' || state.Status === 'dead') {
    if (member.oneShotOk && Number(state.ExitCode) === 0) return { kind: 'pass' };
    return { kind: 'fail', reason: `its container exited with code ${String(state.ExitCode)}` };
  }
  if (state.Restarting === true || restarts !== b.restarts || startedAt !== b.startedAt) {
    return { kind: 'fail', reason: `its container is restarting (crash loop: ${restarts} restarts)` };
  }
  if (state.Status !== 'running') return { kind: 'wait' };
  const health = state.Health?.Status as string | undefined;
  if (health === 'unhealthy') {
    const last = (state.Health?.Log as Array<{ Output?: string }> | undefined)?.at(-1)?.Output?.trim().slice(0, 300);
    return { kind: 'fail', reason: `its healthcheck reports unhealthy${last ? ` (${last})` : ''}` };
  }
  if (health === 'healthy') return { kind: 'pass' };
  if (health === 'starting') return { kind: 'wait' };
  return now - b.since >= stableMs ? { kind: 'pass' } : { kind: 'wait' };
}

const sleep = (ms: number, signal: AbortSignal): Promise<void> =>
  new Promise((resolve) => {
    const timer = setTimeout(resolve, ms);
    signal.addEventListener(
      'abort',
      () => {
        clearTimeout(timer);
        resolve();
      },
      { once: true },
    );
  });

/**
 * Waits until every member passes, or the first fails, or the deadline. `want` narrows what
 * counts as a pass for depends_on: 'healthy' needs a healthcheck verdict, 'exited0' an exit.
 */
export async function waitForGate(engine: StackEngine, members: readonly GateMember[], gate: HealthGate, signal: AbortSignal): Promise<GateVerdict> {
  const base = new Map<string, Baseline>();
  const deadline = Date.now() + gate.deadlineMs;
  const pending = new Set(members);
  while (pending.size > 0) {
    if (signal.aborted) return { ok: false, service: [...pending][0]!.service, id: [...pending][0]!.id, reason: 'the job was stopped' };
    const now = Date.now();
    for (const member of [...pending]) {
      const seen = await look(engine, member, base, gate.stableMs, now);
      if (seen.kind === 'fail') return { ok: false, service: member.service, id: member.id, reason: seen.reason };
      if (seen.kind === 'pass') pending.delete(member);
    }
    if (pending.size === 0) break;
    if (Date.now() >= deadline) {
      const late = [...pending][0]!;
      return { ok: false, service: late.service, id: late.id, reason: `not healthy within ${Math.round(gate.deadlineMs / 1000)} s` };
    }
    await sleep(POLL_MS, signal);
  }
  return { ok: true };
}

/** A depends_on condition on one container, within `deadlineMs`. */
export async function waitForCondition(
  engine: StackEngine,
  member: GateMember,
  condition: 'service_started' | 'service_healthy' | 'service_completed_successfully',
  deadlineMs: number,
  signal: AbortSignal,
): Promise<GateVerdict> {
  if (condition === 'service_started') return { ok: true };
  const deadline = Date.now() + deadlineMs;
  const want = condition;
  while (!signal.aborted) {
    const info = await engine.inspect('containers', member.id);
    if (!info) return { ok: false, service: member.service, id: member.id, reason: 'its container is gone' };
    const state = info.State ?? {};
    if (want === 'service_completed_successfully') {
      if (state.Status === 'exited') {
        return Number(state.ExitCode) === 0 ? { ok: true } : { ok: false, service: member.service, id: member.id, reason: `it exited with code ${String(state.ExitCode)}` };
      }
    } else {
      const health = state.Health?.Status as string | undefined;
      if (health === 'healthy') return { ok: true };
      if (health === undefined) return { ok: false, service: member.service, id: member.id, reason: 'it has no healthcheck, so it can never be service_healthy' };
      if (health === 'unhealthy') return { ok: false, service: member.service, id: member.id, reason: 'its healthcheck reports unhealthy' };
      if (state.Status === 'exited' || state.Status === 'dead') return { ok: false, service: member.service, id: member.id, reason: `it exited with code ${String(state.ExitCode)}` };
    }
    if (Date.now() >= deadline) return { ok: false, service: member.service, id: member.id, reason: `its ${condition} condition was not met within ${Math.round(deadlineMs / 1000)} s` };
    await sleep(POLL_MS, signal);
  }
  return { ok: false, service: member.service, id: member.id, reason: 'the job was stopped' };
}
