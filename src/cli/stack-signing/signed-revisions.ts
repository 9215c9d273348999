/**
 * The CLI's own record of every stack revision it signed a deploy of (issue 13):
 * `~/.dockfleet/signed/<stack>/<revision>.json` (`DOCKFLEET_HOME` stands in for `~/.dockfleet`),
 * mode 0600 in 0700 directories. A rollback names a revision by the hub's word only; the CLI
 * signs it when the hub's proposed project, gate, digest and secrets are the ones it signed then.
 * Secret values are never written here: only a salted SHA-256 of them, enough to tell "the same".
 */
import { createHash, randomBytes } from 'node:crypto';
import { mkdir, readFile, readdir, writeFile, chmod } from 'node:fs/promises';
import { join } from 'node:path';
import { z } from 'zod';
import { canonicalJson } from '../../protocol/intent.ts';
import { STACK_NAME, healthGate, stackProject, type StackRevision } from '../../protocol/stacks.ts';
import { dockfleetHome } from '../intent/operator-key-file.ts';

export interface JobSecretsShape {
  env: Record<string, string>;
  files: Record<string, string>;
}

const signedRevision = z.strictObject({
  v: z.literal(1),
  stack: z.string().regex(STACK_NAME),
  revision: z.number().int().positive(),
  digest: z.string().regex(/^[0-9a-f]{64}$/),
  gate: healthGate,
  project: stackProject,
  /** sha256(salt ‖ canonical JSON of the job's secrets), hex; the salt is per record. */
  secrets: z.strictObject({ salt: z.string().regex(/^[0-9a-f]{32}$/), sha256: z.string().regex(/^[0-9a-f]{64}$/) }),
  nodes: z.array(z.string()),
  signedAt: z.string(),
  key: z.string(),
});
export type SignedRevision = z.infer<typeof signedRevision>;

export function signedDir(stack: string, env: NodeJS.ProcessEnv = process.env): string {
  return join(dockfleetHome(env), 'signed', stack);
}

export function secretsDigest(secrets: JobSecretsShape, salt: string): string {
  return createHash('sha256').update(Buffer.from(salt, 'hex')).update(canonicalJson(secrets)).digest('hex');
}

/** Records (or widens, by the nodes signed now) the revision the CLI just signed. */
export async function recordSigned(target: StackRevision, secrets: JobSecretsShape, nodes: string[], key: string): Promise<void> {
  const dir = signedDir(target.stack);
  await mkdir(dir, { recursive: true, mode: 0o700 });
  const previous = await readSigned(target.stack, target.revision);
  const salt = randomBytes(16).toString('hex');
  const record: SignedRevision = {
    v: 1,
    stack: target.stack,
    revision: target.revision,
    digest: target.digest,
    gate: target.gate,
    project: target.project,
    secrets: { salt, sha256: secretsDigest(secrets, salt) },
    nodes: [...new Set([...(previous?.nodes ?? []), ...nodes])].sort(),
    signedAt: new Date().toISOString(),
    key,
  };
  const file = join(dir, `${target.revision}.json`);
  await writeFile(file, `${canonicalJson(record)}\n`, { mode: 0o600 });
  await chmod(file, 0o600);
}

/** The record of one revision, or null when this CLI never signed it (or the file is not one). */
export async function readSigned(stack: string, revision: number): Promise<SignedRevision | null> {
  let text: string;
  try {
    text = await readFile(join(signedDir(stack), `${revision}.json`), 'utf8');
  } catch {
    return null;
  }
  try {
    const parsed = signedRevision.safeParse(JSON.parse(text));
    return parsed.success && parsed.data.stack === stack && parsed.data.revision === revision ? parsed.data : null;
  } catch {
    return null;
  }
}

/** Every node this CLI ever signed a deploy of the stack for. */
export async function signedNodes(stack: string): Promise<Set<string>> {
  const nodes = new Set<string>();
  let names: string[] = [];
  try {
    names = await readdir(signedDir(stack));
  } catch {
    return nodes;
  }
  for (const name of names) {
    const m = /^(\d+)\.json$/.exec(name);
    const record = m ? await readSigned(stack, Number(m[1])) : null;
    for (const n of record?.nodes ?? []) nodes.add(n);
  }
  return nodes;
}
