/** Client commands that manage nodes through the hub's REST API. */
import { readFileSync } from 'node:fs';
import { parseArgs } from 'node:util';
import { enrollmentCreated, joinTokenCreated, type NodeView } from '../../protocol/api.ts';
import { UsageError, type Command } from '../command.ts';
import { TARGET_HELP, TARGET_OPTIONS, callHub, resolveTarget } from '../hub-client.ts';
import { loadOperatorSigner } from '../intent/operator-key-file.ts';
import { signRebuild } from '../rebuild-signing/sign-rebuild.ts';

const OPTIONS = {
  ...TARGET_OPTIONS,
  ttl: { type: 'string' },
  json: { type: 'boolean' },
  replace: { type: 'boolean' },
  'recovery-code-file': { type: 'string' },
  'restic-password-file': { type: 'string' },
} as const;
type Extra = 'ttl' | 'json' | 'replace' | 'recovery-code-file' | 'restic-password-file';

/** Parses a command's flags; `allowed` names the options beyond the hub-target ones. */
function parse(args: string[], allowed: Extra[] = []) {
  const parsed = parseArgs({ args, strict: true, allowPositionals: true, options: OPTIONS });
  for (const extra of ['ttl', 'json', 'replace', 'recovery-code-file', 'restic-password-file'] as const) {
    if (parsed.values[extra] !== undefined && !allowed.includes(extra)) throw new UsageError(`unknown option --${extra}`);
  }
  return parsed;
}

function oneName(positionals: string[]): string {
  if (positionals.length !== 1) throw new UsageError('expected exactly one NAME');
  return positionals[0]!;
}

function parseTtl(value: string | undefined): number | undefined {
  if (value === undefined) return undefined;
  const m = /^(\d+)(s|m|h|d)?$/.exec(value);
  if (!m) throw new UsageError(`--ttl must look like 900, 15m, 2h or 7d, got "${value}"`);
  return Number(m[1]) * { s: 1, m: 60, h: 3600, d: 86400 }[(m[2] ?? 's') as 's'];
}

/** A command that posts to /api/v1/nodes/NAME/ACTION and prints a line about it. */
function nodeAction(action: 'approve' | 'revoke' | 'rotate', summary: string, done: (name: string) => string): Command {
  return {
    summary,
    usage: `dockfleet ${action} NAME\n\n${TARGET_HELP}`,
    async run(args) {
      const { values, positionals } = parse(args);
      const name = oneName(positionals);
      await callHub(resolveTarget(values), 'POST', `/api/v1/nodes/${encodeURIComponent(name)}/${action}`);
      process.stdout.write(`${done(name)}\n`);
    },
  };
}

/** A secret from a file, trimmed; a clear error when it cannot be read or is empty. */
function secretFile(flag: string, path: string | undefined): string | undefined {
  if (path === undefined) return undefined;
  let text: string;
  try {
    text = readFileSync(path, 'utf8').trim();
  } catch (err) {
    throw new UsageError(`--${flag}: cannot read ${path} (${(err as NodeJS.ErrnoException).code ?? 'error'})`);
  }
  if (text === '') throw new UsageError(`--${flag}: ${path} is empty`);
  return text;
}

export const enrollCommand: Command = {
  summary: 'mint a single-use enrollment code for a new node, or (--replace) for a host that takes over NAME',
  usage: `dockfleet enroll NAME [--ttl 15m] [--replace [--recovery-code-file FILE] [--restic-password-file FILE]]

Prints the agent command line, then the code alone on the last line of stdout.
The code embeds the digest of the hub's CA, so the agent verifies the hub on first contact.

  --replace                     a code for a replacement host that takes over the existing node NAME:
                                its old key is revoked when the new host enrolls, and the hub then
                                restores NAME's volumes and deploys its stacks there
                                (progress: GET /api/v1/nodes/NAME/rebuild, or dockfleet nodes --json)
  --recovery-code-file FILE     escrow custody: the recovery code that opens the escrowed volume keys
  --restic-password-file FILE   hub-managed custody: the repositories' password for the restores

${TARGET_HELP}`,
  async run(args) {
    const { values, positionals } = parse(args, ['ttl', 'replace', 'recovery-code-file', 'restic-password-file']);
    const name = oneName(positionals);
    const target = resolveTarget(values);
    const ttlSeconds = parseTtl(values.ttl);
    const recoveryCode = secretFile('recovery-code-file', values['recovery-code-file']);
    const resticPassword = secretFile('restic-password-file', values['restic-password-file']);
    if (!values.replace && (recoveryCode !== undefined || resticPassword !== undefined)) throw new UsageError('--recovery-code-file and --restic-password-file go with --replace');
    const body = {
      name,
      ...(ttlSeconds ? { ttlSeconds } : {}),
      ...(values.replace ? { replace: true } : {}),
      ...(recoveryCode === undefined ? {} : { recoveryCode }),
      ...(resticPassword === undefined ? {} : { resticPassword }),
    };
    const res = enrollmentCreated.parse(await callHub(target, 'POST', '/api/v1/enrollments', body));
    if (values.replace) process.stdout.write(`# a replacement for ${name}: when it enrolls, the old host's key is revoked and the hub rebuilds ${name} there\n`);
    process.stdout.write(`# on the Docker host of ${name} (code valid until ${res.expiresAt}, single use):\n`);
    process.stdout.write(`#   dockfleet agent --hub ${target.url.origin} --code ${res.code}\n`);
    process.stdout.write(`${res.code}\n`);
  },
};

export const joinTokenCommand: Command = {
  summary: 'mint a fleet join token: nodes that join with it wait as pending until approved',
  usage: `dockfleet join-token [--ttl 24h]

Prints the token alone on the last line of stdout. Agents use it as --code with --name NAME.

${TARGET_HELP}`,
  async run(args) {
    const { values, positionals } = parse(args, ['ttl']);
    if (positionals.length > 0) throw new UsageError('join-token takes no arguments');
    const ttlSeconds = parseTtl(values.ttl);
    const res = joinTokenCreated.parse(await callHub(resolveTarget(values), 'POST', '/api/v1/join-tokens', ttlSeconds ? { ttlSeconds } : {}));
    process.stdout.write(`# reusable until ${res.expiresAt}; nodes joining with it wait for 'dockfleet approve NAME'\n${res.token}\n`);
  },
};

export const nodesCommand: Command = {
  summary: 'list nodes and their status',
  usage: `dockfleet nodes [--json]

  --json   an array of {name, status, lastSeen, engine:{version}, …}; status is pending|online|offline|revoked

${TARGET_HELP}`,
  async run(args) {
    const { values, positionals } = parse(args, ['json']);
    if (positionals.length > 0) throw new UsageError('nodes takes no arguments');
    const nodes = (await callHub(resolveTarget(values), 'GET', '/api/v1/nodes')) as NodeView[];
    if (values.json) {
      process.stdout.write(`${JSON.stringify(nodes, null, 2)}\n`);
      return;
    }
    const rows = [['NAME', 'STATUS', 'ENGINE', 'CONTAINERS', 'LAST SEEN']];
    for (const n of nodes) {
      rows.push([n.name, n.status, n.engine.version ?? '-', `${n.counts.running}/${n.counts.containers}`, n.lastSeen ?? 'never']);
    }
    const widths = rows[0]!.map((_, i) => Math.max(...rows.map((r) => r[i]!.length)));
    for (const r of rows)
      process.stdout.write(
        `${r
          .map((c, i) => c.padEnd(widths[i]!))
          .join('  ')
          .trimEnd()}\n`,
      );
  },
};

export const approveCommand = nodeAction('approve', 'approve a pending node (joined with a join token)', (n) => `node ${n} approved`);
export const revokeCommand = nodeAction('revoke', 'revoke a node: its credential stops working at once, for good', (n) => `node ${n} revoked`);
export const rotateCommand = nodeAction('rotate', "replace a node's key without downtime", (n) => `node ${n} key rotated`);

/**
 * `dockfleet node rebuild NAME`: retry a failed host rebuild (POST /api/v1/nodes/NAME/rebuild);
 * with --sign, sign the jobs a rebuild waits on instead (rebuild-signing/).
 */
export const nodeCommand: Command = {
  summary: 'node operations: rebuild NAME retries a failed host rebuild, or (--sign) signs what it waits on',
  usage: `dockfleet node rebuild NAME [--recovery-code-file FILE] [--restic-password-file FILE] [--wait]
dockfleet node rebuild NAME --sign [--wait] [--key KEY]

Starts a new rebuild of NAME from where its failed one stood: the volumes already restored and
the stacks already deployed are kept, the rest run again (new jobs). Admins only.

  --recovery-code-file FILE     a corrected escrow recovery code (replaces the one given before)
  --restic-password-file FILE   a corrected repository password (hub-managed custody)
  --wait                        wait for the rebuild to finish: exit 0 when done, 1 when it failed

With --sign, nothing is retried: on a replacement that requires signed intent, the rebuild's
restores and deploys wait for the operator's signature (awaiting-signature). --sign checks each
waiting job against the rebuild's record (the node; a volume-restore of the step's volume from
its repository, no secret; a deploy of the step's stack at its revision, as this CLI signed that
revision before, else shown and signed as the hub has it), signs it with the local operator key
and prints one line per job on stderr. A job that differs is declined at the hub, naming the
field, nothing is signed, and the command exits 1. Admins and operators.

  --sign                        sign the jobs the rebuild waits on now (none waiting: says so, exit 0)
  --wait                        with --sign: keep signing steps as they come (the deploys follow the
                                restores) until the rebuild is done (exit 0) or failed (exit 1)
  --key KEY                     the operator key to sign with (default: this machine's default key)

${TARGET_HELP}`,
  async run(args) {
    const parsed = parseArgs({ args, strict: true, allowPositionals: true, options: { ...OPTIONS, wait: { type: 'boolean' }, sign: { type: 'boolean' }, key: { type: 'string' } } });
    const { values } = parsed;
    for (const extra of ['ttl', 'json', 'replace'] as const) if (values[extra] !== undefined) throw new UsageError(`unknown option --${extra}`);
    const [verb, ...rest] = parsed.positionals;
    if (verb !== 'rebuild') throw new UsageError(verb === undefined ? 'expected a subcommand: rebuild NAME' : `unknown subcommand "${verb}" (expected rebuild)`);
    const name = oneName(rest);
    if (values.key !== undefined && !values.sign) throw new UsageError('--key goes with --sign');
    if (values.sign) {
      if (values['recovery-code-file'] !== undefined || values['restic-password-file'] !== undefined) {
        throw new UsageError('--sign signs what the rebuild waits on; --recovery-code-file and --restic-password-file go with a retry (without --sign)');
      }
      const signer = loadOperatorSigner(values.key === undefined ? {} : { key: values.key });
      if (!signer) throw new UsageError('--sign needs an operator key on this machine (dockfleet operator-key create)');
      await signRebuild(resolveTarget(values), name, signer, { wait: values.wait === true });
      return;
    }
    const target = resolveTarget(values);
    const recoveryCode = secretFile('recovery-code-file', values['recovery-code-file']);
    const resticPassword = secretFile('restic-password-file', values['restic-password-file']);
    const path = `/api/v1/nodes/${encodeURIComponent(name)}/rebuild`;
    let view = (await callHub(target, 'POST', path, { ...(recoveryCode === undefined ? {} : { recoveryCode }), ...(resticPassword === undefined ? {} : { resticPassword }) })) as {
      id: string;
      state: string;
      error: string | null;
    };
    process.stdout.write(`# rebuild of ${name} started again; progress: dockfleet nodes --json, or GET ${path}\n${view.id}\n`);
    if (!values.wait) return;
    while (view.state !== 'done' && view.state !== 'failed') {
      await new Promise((r) => setTimeout(r, 1_000));
      view = (await callHub(target, 'GET', path)) as typeof view;
    }
    if (view.state === 'failed') throw new Error(`the rebuild of ${name} failed: ${view.error ?? 'no reason given'}`);
    process.stdout.write(`rebuild of ${name} done\n`);
  },
};
