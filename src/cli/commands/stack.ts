/** `dockfleet stack deploy|ls|history|rollback|rm` (CONTRACT.md, Stacks and jobs). */
import { readFile } from 'node:fs/promises';
import { parseArgs } from 'node:util';
import { DockfleetError } from '../../protocol/errors.ts';
import type { RolloutStarted, RolloutView, StackListItem } from '../../protocol/stack-api.ts';
import { UsageError, type Command } from '../command.ts';
import { TARGET_HELP, TARGET_OPTIONS, callHub, resolveTarget, type HubTarget } from '../hub-client.ts';
import { readEnvFile, readNamedFiles } from './stack-files.ts';
import { chooseSigner, localProject } from './stack-sign-choice.ts';
import { signRollout, type Asked } from '../stack-signing/sign-rollout.ts';

const OPTIONS = {
  ...TARGET_OPTIONS,
  file: { type: 'string', short: 'f' },
  node: { type: 'string' },
  nodes: { type: 'string' },
  selector: { type: 'string' },
  'env-file': { type: 'string' },
  'secret-env-file': { type: 'string' },
  parallel: { type: 'string' },
  wait: { type: 'boolean' },
  json: { type: 'boolean' },
  to: { type: 'string' },
  'idempotency-key': { type: 'string' },
  sign: { type: 'boolean' },
  'no-sign': { type: 'boolean' },
  key: { type: 'string' },
  'trust-hub': { type: 'boolean' },
} as const;
const SIGN_FLAGS = ['sign', 'no-sign', 'key'];
/** --wait asks for the rollout this often: a deploy takes seconds, and 500 ms added up to half a second to each (bench/stack-deploy). */
const WAIT_POLL_MS = 100;

const stackPath = (name: string, rest = ''): string => `/api/v1/stacks/${encodeURIComponent(name)}${rest}`;

function table(rows: string[][]): void {
  const widths = rows[0]!.map((_, i) => Math.max(...rows.map((r) => r[i]!.length)));
  for (const r of rows)
    process.stdout.write(
      `${r
        .map((c, i) => c.padEnd(widths[i]!))
        .join('  ')
        .trimEnd()}\n`,
    );
}

function positiveInt(value: string | undefined, flag: string): number | undefined {
  if (value === undefined) return undefined;
  if (!/^[1-9]\d*$/.test(value)) throw new UsageError(`${flag} must be a positive whole number`);
  return Number(value);
}

/** Prints the jobs filed (the last one last); with --wait, follows the rollout to its end. */
async function finish(target: HubTarget, started: RolloutStarted, wait: boolean): Promise<void> {
  for (const job of started.jobs) process.stdout.write(`${job}\n`);
  if (!wait) return;
  let rollout: RolloutView;
  for (;;) {
    rollout = (await callHub(target, 'GET', stackPath(started.stack, `/rollouts/${started.rollout}`))) as RolloutView;
    if (rollout.state !== 'running') break;
    await new Promise((r) => setTimeout(r, WAIT_POLL_MS));
  }
  const last = rollout.jobs.at(-1);
  if (last !== undefined && last !== started.jobs.at(-1)) process.stdout.write(`${last}\n`);
  if (rollout.state === 'failed') throw new DockfleetError('invalid_state', `${rollout.kind} of ${rollout.stack} failed: ${rollout.error ?? 'a job failed'}`);
}

async function deploy(args: ReturnType<typeof parse>): Promise<void> {
  const { values, positionals } = args;
  const name = oneName(positionals);
  if (values.file === undefined) throw new UsageError('deploy needs -f FILE');
  const chosen = (['node', 'nodes', 'selector'] as const).filter((k) => values[k] !== undefined);
  if (chosen.length !== 1) throw new UsageError('give exactly one of --node, --nodes or --selector');
  const targetSpec =
    values.node !== undefined
      ? { node: values.node }
      : values.nodes !== undefined
        ? {
            nodes: values.nodes
              .split(',')
              .map((n) => n.trim())
              .filter(Boolean),
          }
        : { selector: values.selector! };
  let compose: string;
  try {
    compose = await readFile(values.file, 'utf8');
  } catch {
    throw new DockfleetError('bad_request', `cannot read the compose file at ${values.file}`);
  }
  const parallel = positiveInt(values.parallel, '--parallel');
  const env = values['env-file'] === undefined ? undefined : await readEnvFile(values['env-file']);
  const secretEnv = values['secret-env-file'] === undefined ? undefined : await readEnvFile(values['secret-env-file']);
  const files = await readNamedFiles(values.file, compose);
  const body = {
    compose,
    target: targetSpec,
    files,
    ...(env === undefined ? {} : { env }),
    ...(secretEnv === undefined ? {} : { secretEnv }),
    ...(parallel === undefined ? {} : { parallel }),
    ...idempotency(values),
  };
  const target = resolveTarget(values);
  const signer = await chooseSigner(values, target, { deployTo: targetSpec });
  if (!signer) return finish(target, (await callHub(target, 'POST', stackPath(name, '/deploy'), body)) as RolloutStarted, values.wait === true);
  // Parsed here with the hub's own parser, before anything is filed: what the signature may cover.
  const local = localProject({ stack: name, yaml: compose, env: env ?? {}, secretEnv: secretEnv ?? {}, files });
  const asked: Asked = {
    kind: 'deploy',
    stack: name,
    ...local,
    parallel: parallel ?? 1,
    nodes: 'node' in targetSpec ? [targetSpec.node as string] : 'nodes' in targetSpec ? (targetSpec.nodes as string[]) : null,
  };
  const started = (await callHub(target, 'POST', stackPath(name, '/deploy'), { ...body, sign: true })) as RolloutStarted;
  await signRollout(target, started, asked, signer);
  await finish(target, started, values.wait === true);
}

/** `--idempotency-key K`: a repeated command with the same key returns what the first one filed. */
function idempotency(values: { 'idempotency-key'?: string | undefined }): { idempotencyKey?: string } {
  const key = values['idempotency-key'];
  if (key === undefined) return {};
  if (key.length < 1 || key.length > 200) throw new UsageError('--idempotency-key must be 1 to 200 characters');
  return { idempotencyKey: key };
}

function parse(args: string[]) {
  return parseArgs({ args, strict: true, allowPositionals: true, options: OPTIONS });
}

function oneName(positionals: string[]): string {
  if (positionals.length !== 1) throw new UsageError('expected exactly one stack NAME');
  return positionals[0]!;
}

function only(values: Record<string, unknown>, allowed: string[]): void {
  const own = ['file', 'node', 'nodes', 'selector', 'env-file', 'secret-env-file', 'parallel', 'wait', 'json', 'to', 'idempotency-key', 'sign', 'no-sign', 'key', 'trust-hub'];
  for (const key of own) if (values[key] !== undefined && !allowed.includes(key)) throw new UsageError(`unknown option --${key}`);
}

export const stackCommand: Command = {
  summary: 'deploy Compose stacks to nodes, list them, see their history, roll back, remove',
  usage: `dockfleet stack deploy NAME -f FILE (--node N | --nodes A,B | --selector key=value)
                       [--env-file F] [--secret-env-file F] [--parallel N] [--idempotency-key K] [--wait]
dockfleet stack ls [--json]
dockfleet stack history NAME [--json]
dockfleet stack rollback NAME [--to REV] [--idempotency-key K] [--trust-hub] [--wait]
dockfleet stack rm NAME [--wait]
        deploy, rollback and rm also take [--sign | --no-sign] [--key ID]

deploy, rollback and rm print the jobs they filed, the last one on the last line of stdout.
--wait follows the rollout: exit 0 when every target is healthy, 1 when it failed (a failed
deploy is rolled back on its node; the nodes after it keep their revision).
--selector picks the nodes that carry the label when the deploy is filed.
--idempotency-key K: the same command again with the same K files nothing new and prints the
same jobs (safe to retry after a lost answer). One rollout runs per stack at a time: another
is refused with [rollout_in_progress] until it ends.
Files the Compose file names (env_file, secrets and configs with file:) are read relative to it.
Signing (hosts whose policy requires signed intent): with an operator key on this machine, the
jobs are signed when a target node requires it (--sign: always; --no-sign: never). The CLI
checks every job the hub proposes against the Compose file parsed here and refuses to sign on
any difference; a rollback is signed only to a revision this CLI signed before (--trust-hub
signs the hub's revision after showing its services and images).

${TARGET_HELP}`,
  async run(argv) {
    const [sub, ...rest] = argv;
    const args = parse(rest);
    const { values, positionals } = args;
    switch (sub) {
      case 'deploy':
        only(values, ['file', 'node', 'nodes', 'selector', 'env-file', 'secret-env-file', 'parallel', 'wait', 'idempotency-key', ...SIGN_FLAGS]);
        return deploy(args);
      case 'ls': {
        only(values, ['json']);
        if (positionals.length > 0) throw new UsageError('stack ls takes no arguments');
        const stacks = (await callHub(resolveTarget(values), 'GET', '/api/v1/stacks')) as StackListItem[];
        if (values.json) return void process.stdout.write(`${JSON.stringify(stacks, null, 2)}\n`);
        const rows = [['NAME', 'REVISION', 'NODES']];
        for (const s of stacks) rows.push([s.name, String(s.revision), s.nodes.map((n) => `${n.node}:${n.status}@${n.revision}`).join(' ') || '-']);
        return table(rows);
      }
      case 'history': {
        only(values, ['json']);
        const history = (await callHub(resolveTarget(values), 'GET', stackPath(oneName(positionals), '/history'))) as Array<{
          revision: number;
          createdAt: string;
          createdBy: string;
          services: string[];
          digest: string;
        }>;
        if (values.json) return void process.stdout.write(`${JSON.stringify(history, null, 2)}\n`);
        const rows = [['REVISION', 'CREATED', 'BY', 'SERVICES', 'DIGEST']];
        for (const h of history) rows.push([String(h.revision), h.createdAt, h.createdBy, h.services.join(','), h.digest.slice(0, 12)]);
        return table(rows);
      }
      case 'rollback': {
        only(values, ['to', 'wait', 'idempotency-key', 'trust-hub', ...SIGN_FLAGS]);
        const to = positiveInt(values.to, '--to');
        const target = resolveTarget(values);
        const name = oneName(positionals);
        const body = { ...(to === undefined ? {} : { to }), ...idempotency(values) };
        const signer = await chooseSigner(values, target, { stack: name });
        const started = (await callHub(target, 'POST', stackPath(name, '/rollback'), signer ? { ...body, sign: true } : body)) as RolloutStarted;
        if (signer) await signRollout(target, started, { kind: 'rollback', stack: name, to: to ?? null, trustHub: values['trust-hub'] === true }, signer);
        return finish(target, started, values.wait === true);
      }
      case 'rm': {
        only(values, ['wait', ...SIGN_FLAGS]);
        const target = resolveTarget(values);
        const name = oneName(positionals);
        const signer = await chooseSigner(values, target, { stack: name });
        const started = (await callHub(target, 'DELETE', stackPath(name, signer ? '?sign=true' : ''))) as RolloutStarted;
        if (signer) await signRollout(target, started, { kind: 'remove', stack: name }, signer);
        return finish(target, started, values.wait === true);
      }
      default:
        throw new UsageError(sub === undefined ? 'expected deploy, ls, history, rollback or rm' : `unknown stack command "${sub}"`);
    }
  },
};
