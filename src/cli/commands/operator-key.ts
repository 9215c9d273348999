/**
 * `dockfleet operator-key create|show|list|revoke` (issue 13): the Ed25519 keys a user signs
 * intents with. The key pair is made here and its private half never leaves this machine
 * (`~/.dockfleet/operator-keys/<fingerprint>.pem`, 0600, or under DOCKFLEET_HOME); the hub keeps
 * the public half so people can tell which key is whose. A host trusts a key only once its own
 * policy file lists it, in the form `show` prints.
 */
import { hostname, userInfo } from 'node:os';
import { rm } from 'node:fs/promises';
import { join } from 'node:path';
import { parseArgs } from 'node:util';
import { DockfleetError } from '../../protocol/errors.ts';
import type { OperatorKeyView } from '../../protocol/operator-keys.ts';
import { generateOperatorKey } from '../../lib/intent-keys.ts';
import { OPERATOR_KEY_FINGERPRINT, operatorKeyFingerprint } from '../../lib/operator-key-fingerprint.ts';
import { UsageError, type Command } from '../command.ts';
import { TARGET_HELP, TARGET_OPTIONS, callHub, resolveTarget, type TargetFlags } from '../hub-client.ts';
import { chooseLocalKey, defaultKeyId, localKeyIds, operatorKeyDir, readLocalKey, saveLocalKey } from '../intent/operator-key-file.ts';

const OPTIONS = {
  ...TARGET_OPTIONS,
  name: { type: 'string' },
  json: { type: 'boolean' },
  all: { type: 'boolean' },
  delete: { type: 'boolean' },
} as const;

function only(values: Record<string, unknown>, allowed: string[], hub: boolean): void {
  const extra = Object.keys(values).filter((k) => !(hub && k in TARGET_OPTIONS) && !allowed.includes(k));
  if (extra.length > 0) throw new UsageError(`--${extra[0]} does not apply here`);
}

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

function defaultName(): string {
  let user = 'user';
  try {
    user = userInfo().username;
  } catch {
    // No passwd entry (a container's random uid): the host name alone says enough.
  }
  return `${user}@${hostname()}`.slice(0, 100);
}

async function create(values: TargetFlags & { name?: string | undefined }): Promise<void> {
  const target = resolveTarget(values);
  const pair = generateOperatorKey();
  const id = operatorKeyFingerprint(pair.publicKey);
  const dir = operatorKeyDir();
  // Kept here first, so a key the hub knows always has its private half somewhere.
  const saved = await saveLocalKey(id, pair.privateKeyPem, dir);
  try {
    await callHub(target, 'POST', '/api/v1/operator-keys', { publicKey: pair.publicKey, name: values.name ?? defaultName() });
  } catch (err) {
    // Not registered: leave nothing behind that list would show as a half-made key.
    await rm(saved.file, { force: true });
    if (saved.isDefault) await rm(join(dir, 'default'), { force: true });
    throw err;
  }
  process.stderr.write(
    `operator key ${id} saved to ${saved.file}${saved.isDefault ? ' (the default key)' : ''} and registered at the hub.\n` +
      'A host accepts it once its policy file lists it under signedIntent.operators:\n',
  );
  process.stdout.write(`${pair.publicKey}\n`);
}

function show(positionals: string[]): void {
  if (positionals.length > 1) throw new UsageError('operator-key show takes at most one key id');
  const dir = operatorKeyDir();
  const id = chooseLocalKey(positionals[0], dir);
  if (id === null) throw new DockfleetError('not_found', `no operator key in ${dir}; make one with dockfleet operator-key create`);
  process.stdout.write(`${readLocalKey(id, dir).publicKey}\n`);
}

async function list(values: TargetFlags & { json?: boolean | undefined; all?: boolean | undefined }): Promise<void> {
  const keys = (await callHub(resolveTarget(values), 'GET', `/api/v1/operator-keys${values.all ? '?all=1' : ''}`)) as OperatorKeyView[];
  const local = new Set(localKeyIds());
  const chosen = defaultKeyId();
  const rows = keys.map((k) => ({ ...k, local: local.has(k.id), default: k.id === chosen }));
  if (values.json) return void process.stdout.write(`${JSON.stringify(rows, null, 2)}\n`);
  const lines = [['ID', 'NAME', ...(values.all ? ['USER'] : []), 'CREATED', 'STATE', 'HERE']];
  for (const k of rows) {
    lines.push([k.id, k.name, ...(values.all ? [k.user] : []), k.createdAt, k.revokedAt === null ? 'current' : `revoked ${k.revokedAt}`, k.local ? (k.default ? 'yes (default)' : 'yes') : '-']);
  }
  table(lines);
}

async function revoke(positionals: string[], values: TargetFlags & { delete?: boolean | undefined }): Promise<void> {
  if (positionals.length !== 1) throw new UsageError('operator-key revoke takes one key id (see dockfleet operator-key list)');
  const target = resolveTarget(values);
  let id = positionals[0]!.toLowerCase();
  if (!OPERATOR_KEY_FINGERPRINT.test(id)) {
    // A prefix, as list shows ids: resolved against the hub's record of this user's keys.
    const mine = (await callHub(target, 'GET', '/api/v1/operator-keys')) as OperatorKeyView[];
    const matches = mine.filter((k) => k.id.startsWith(id));
    if (matches.length !== 1)
      throw new DockfleetError(matches.length ? 'bad_request' : 'not_found', matches.length ? `${id} matches several of your keys; give more of it` : `no operator key ${id} of yours`);
    id = matches[0]!.id;
  }
  await callHub(target, 'DELETE', `/api/v1/operator-keys/${encodeURIComponent(id)}`);
  process.stdout.write(`revoked ${id} at the hub. Hosts whose policy file lists it still accept it until it is removed there.\n`);
  const dir = operatorKeyDir();
  if (!localKeyIds(dir).includes(id)) return;
  if (!values.delete) return void process.stdout.write(`The key file ${join(dir, `${id}.pem`)} is kept (--delete removes it).\n`);
  const wasDefault = defaultKeyId(dir) === id;
  await rm(join(dir, `${id}.pem`));
  if (wasDefault) await rm(join(dir, 'default'), { force: true });
  process.stdout.write(`Deleted ${join(dir, `${id}.pem`)}.\n`);
}

export const operatorKeyCommand: Command = {
  summary: 'the keys you sign intents with, for hosts that require signed intent: create, show, list, revoke',
  usage: `dockfleet operator-key create [--name NAME]   # make a key here, register its public half; prints it
dockfleet operator-key show [ID]              # the public key, as a policy file's signedIntent.operators takes it
dockfleet operator-key list [--json] [--all]  # your keys at the hub (--all: everyone's, admins), and which are here
dockfleet operator-key revoke ID [--delete]   # revoke at the hub; --delete also removes the key file here

Keys live in ~/.dockfleet/operator-keys/ (DOCKFLEET_HOME replaces ~/.dockfleet): one file per key,
named by its fingerprint, mode 0600; the first one made is the default (named in the file
"default"). The private key never leaves this machine. ID is a fingerprint or a unique prefix.
A host trusts a key only when its own policy file lists it; revoking at the hub does not change
any host's policy file.

--json (list): [{id, name, user, publicKey, createdAt, revokedAt, local, default}]

${TARGET_HELP}`,
  async run(argv) {
    const [sub, ...rest] = argv;
    const { values, positionals } = parseArgs({ args: rest, strict: true, allowPositionals: true, options: OPTIONS });
    switch (sub) {
      case 'create':
        only(values, ['name'], true);
        if (positionals.length > 0) throw new UsageError('operator-key create takes no arguments, only --name');
        return create(values);
      case 'show':
        only(values, [], false);
        return show(positionals);
      case 'list':
      case 'ls':
        only(values, ['json', 'all'], true);
        if (positionals.length > 0) throw new UsageError('operator-key list takes no arguments');
        return list(values);
      case 'revoke':
        only(values, ['delete'], true);
        return revoke(positionals, values);
      default:
        throw new UsageError(sub === undefined ? 'expected create, show, list or revoke' : `unknown operator-key command "${sub}"`);
    }
  },
};
