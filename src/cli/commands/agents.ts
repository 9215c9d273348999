/**
 * `dockfleet agents upgrade --to VERSION [--parallel N] [--nodes A,B] [--wait]` and
 * `dockfleet agents upgrades [--json]` (issue 16): roll an agent release out in waves of N and
 * watch the rollout. Each agent verifies the release against its own pinned key, restarts into it,
 * and goes back by itself when the new version does not reconnect.
 */
import { parseArgs } from 'node:util';
import type { RolloutView } from '../../protocol/releases.ts';
import { UsageError, type Command } from '../command.ts';
import { TARGET_HELP, TARGET_OPTIONS, callHub, resolveTarget } from '../hub-client.ts';

const POLL_MS = 1_000;

function printRollout(r: RolloutView): void {
  process.stdout.write(`upgrade ${r.id} to ${r.to}: ${r.state}\n`);
  for (const n of r.nodes) process.stdout.write(`  wave ${n.wave}  ${n.node}  ${n.state}${n.from ? ` (from ${n.from})` : ''}${n.reason ? `: ${n.reason}` : ''}\n`);
}

export const agentsCommand: Command = {
  summary: "upgrade the fleet's agents to a signed release, in waves",
  usage: `dockfleet agents upgrade --to VERSION [--parallel N] [--nodes A,B] [--wait]
dockfleet agents upgrades [--json]

  upgrade   rolls VERSION (dockfleet release add) out to every online node, or the named ones,
            N at a time (default 1); a wave starts when the last one came back on VERSION, and a
            failure stops the rollout. Last line of stdout: the rollout id. --wait: exit 0 when
            every node runs VERSION, 1 when the rollout failed.
  upgrades  the rollouts, newest first.
${TARGET_HELP}`,
  async run(args) {
    const { values, positionals } = parseArgs({
      args,
      strict: true,
      allowPositionals: true,
      options: { ...TARGET_OPTIONS, to: { type: 'string' }, parallel: { type: 'string' }, nodes: { type: 'string' }, wait: { type: 'boolean' }, json: { type: 'boolean' } },
    });
    const target = resolveTarget(values);
    if (positionals[0] === 'upgrades' && positionals.length === 1) {
      const list = (await callHub(target, 'GET', '/api/v1/agent-upgrades')) as RolloutView[];
      if (values.json) process.stdout.write(`${JSON.stringify(list, null, 2)}\n`);
      else list.forEach(printRollout);
      return;
    }
    if (positionals[0] !== 'upgrade' || positionals.length !== 1) throw new UsageError('usage: dockfleet agents upgrade --to VERSION | agents upgrades');
    if (!values.to) throw new UsageError('--to VERSION is required');
    const parallel = values.parallel === undefined ? undefined : Number(values.parallel);
    if (parallel !== undefined && !(Number.isInteger(parallel) && parallel > 0)) throw new UsageError('--parallel wants a positive whole number');
    const nodes = values.nodes
      ?.split(',')
      .map((n) => n.trim())
      .filter((n) => n !== '');
    let rollout = (await callHub(target, 'POST', '/api/v1/agent-upgrades', { to: values.to, ...(parallel ? { parallel } : {}), ...(nodes ? { nodes } : {}) })) as RolloutView;
    if (values.wait) {
      while (rollout.state === 'running') {
        await new Promise((r) => setTimeout(r, POLL_MS));
        rollout = (await callHub(target, 'GET', `/api/v1/agent-upgrades/${rollout.id}`)) as RolloutView;
      }
      printRollout(rollout);
    }
    process.stdout.write(`${rollout.id}\n`);
    if (values.wait && rollout.state !== 'succeeded')
      throw new Error(`the upgrade to ${rollout.to} failed: ${rollout.nodes.find((n) => n.state === 'failed')?.reason ?? 'see dockfleet agents upgrades'}`);
  },
};
