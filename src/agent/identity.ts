/**
 * The agent's durable identity in --state: which hub (and its pinned CA), which node, and the
 * private key the agent made itself (0600, never sent anywhere). A key prepared for rotation
 * waits beside it in key.next.pem until the hub has switched.
 */
import { X509Certificate, createPrivateKey, createPublicKey, hkdfSync } from 'node:crypto';
import { mkdir, readFile, rename, rm, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { z } from 'zod';
import { DockfleetError } from '../protocol/errors.ts';
import { generateNodeKey, keyIdOf, rotationProofPayload, signWith } from '../protocol/node-keys.ts';
import type { RotatePrepared } from '../protocol/inventory.ts';

const IDENTITY_FILE = 'identity.json';
const KEY_FILE = 'key.pem';
const NEXT_KEY_FILE = 'key.next.pem';

const identityFile = z.object({
  v: z.literal(1),
  hubUrl: z.url({ protocol: /^https$/ }),
  node: z.string().regex(/^[a-z0-9][a-z0-9-]{0,62}$/),
  caPem: z.string().refine(isCertificate, 'not a PEM certificate'),
});

function isCertificate(pem: string): boolean {
  try {
    new X509Certificate(pem);
    return true;
  } catch {
    return false;
  }
}

/** A state file that exists but cannot be used: one line naming it and the way out. */
function damaged(path: string, what: string, dir: string): DockfleetError {
  return new DockfleetError(
    'state_corrupt',
    `agent state file ${path} is damaged (${what}); restore ${dir} from a backup, or move it aside and enroll this host again with a new code from \`dockfleet enroll NAME\``,
  );
}

async function readStateFile(path: string, dir: string): Promise<string> {
  try {
    return await readFile(path, 'utf8');
  } catch (err) {
    const code = (err as NodeJS.ErrnoException).code ?? 'unreadable';
    throw damaged(path, code === 'ENOENT' ? 'missing beside identity.json' : `cannot be read: ${code}`, dir);
  }
}

function parseIdentity(text: string, path: string, dir: string): z.infer<typeof identityFile> {
  let raw: unknown;
  try {
    raw = JSON.parse(text);
  } catch {
    throw damaged(path, text.trim() === '' ? 'empty' : 'not complete JSON, perhaps truncated', dir);
  }
  const parsed = identityFile.safeParse(raw);
  if (parsed.success) return parsed.data;
  const issue = parsed.error.issues[0];
  throw damaged(path, `field ${issue?.path.join('.') || '(top level)'}: ${issue?.message ?? 'unexpected shape'}`, dir);
}

/** The public half of a private key read from `path`, or a state_corrupt error naming it. */
function publicOfFile(privateKeyPem: string, path: string, dir: string): string {
  try {
    return publicOf(privateKeyPem);
  } catch {
    throw damaged(path, privateKeyPem.trim() === '' ? 'empty' : 'not a private key in PEM form', dir);
  }
}

async function writeAtomic(path: string, data: string, mode: number): Promise<void> {
  const tmp = `${path}.${process.pid}.tmp`;
  await writeFile(tmp, data, { mode });
  await rename(tmp, path);
}

export class AgentIdentity {
  readonly dir: string;
  readonly hubUrl: string;
  readonly node: string;
  readonly caPem: string;
  #privateKeyPem: string;
  #keyId: string;

  private constructor(dir: string, data: z.infer<typeof identityFile>, privateKeyPem: string, publicKeyPem: string) {
    this.dir = dir;
    this.hubUrl = data.hubUrl;
    this.node = data.node;
    this.caPem = data.caPem;
    this.#privateKeyPem = privateKeyPem;
    this.#keyId = keyIdOf(publicKeyPem);
  }

  get keyId(): string {
    return this.#keyId;
  }

  sign(payload: Buffer): string {
    return signWith(this.#privateKeyPem, payload);
  }

  /** A 32-byte key for sealing this agent's own state at rest: HKDF-SHA256 over the private key,
   * `purpose` keeping uses apart. It changes when the key rotates (say which key sealed what: keyId). */
  deriveStateKey(purpose: string): Buffer {
    const ikm = createPrivateKey(this.#privateKeyPem).export({ type: 'pkcs8', format: 'der' });
    return Buffer.from(hkdfSync('sha256', ikm, Buffer.alloc(0), `dockfleet agent state v1: ${purpose}`, 32));
  }

  /** Loads the identity in `dir`, or null when the agent was never enrolled there. */
  static async load(dir: string): Promise<AgentIdentity | null> {
    const identityPath = join(dir, IDENTITY_FILE);
    let text: string;
    try {
      text = await readFile(identityPath, 'utf8');
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code === 'ENOENT') return null;
      throw damaged(identityPath, `cannot be read: ${(err as NodeJS.ErrnoException).code ?? 'unreadable'}`, dir);
    }
    const data = parseIdentity(text, identityPath, dir);
    const keyPath = join(dir, KEY_FILE);
    const privateKeyPem = await readStateFile(keyPath, dir);
    return new AgentIdentity(dir, data, privateKeyPem, publicOfFile(privateKeyPem, keyPath, dir));
  }

  /** Generates a key pair for a new enrollment (nothing is written until `save`). */
  static newKey(): { publicKeyPem: string; privateKeyPem: string } {
    return generateNodeKey();
  }

  static async save(dir: string, data: { hubUrl: string; node: string; caPem: string }, privateKeyPem: string): Promise<AgentIdentity> {
    await mkdir(dir, { recursive: true, mode: 0o700 });
    await writeAtomic(join(dir, KEY_FILE), privateKeyPem, 0o600);
    const record = { v: 1 as const, ...data };
    await writeAtomic(join(dir, IDENTITY_FILE), `${JSON.stringify(record, null, 2)}\n`, 0o600);
    return new AgentIdentity(dir, record, privateKeyPem, publicOf(privateKeyPem));
  }

  /** Rotation step 1: make and keep a new key beside the current one. */
  async prepareRotation(): Promise<RotatePrepared> {
    const next = generateNodeKey();
    await writeAtomic(join(this.dir, NEXT_KEY_FILE), next.privateKeyPem, 0o600);
    const keyId = keyIdOf(next.publicKeyPem);
    return { keyId, publicKey: next.publicKeyPem, proof: signWith(next.privateKeyPem, rotationProofPayload(this.node, keyId)) };
  }

  /** Rotation step 3 (or recovery after a lost commit): promote the prepared key. */
  async promoteNextKey(expectedKeyId?: string): Promise<boolean> {
    let next: string;
    try {
      next = await readFile(join(this.dir, NEXT_KEY_FILE), 'utf8');
    } catch {
      return false;
    }
    let keyId: string;
    try {
      keyId = keyIdOf(publicOf(next));
    } catch {
      // A damaged prepared key is as good as none: the hub keeps the current key.
      await this.discardNextKey();
      return false;
    }
    if (expectedKeyId !== undefined && keyId !== expectedKeyId) return false;
    await rename(join(this.dir, NEXT_KEY_FILE), join(this.dir, KEY_FILE));
    this.#privateKeyPem = next;
    this.#keyId = keyId;
    return true;
  }

  async discardNextKey(): Promise<void> {
    await rm(join(this.dir, NEXT_KEY_FILE), { force: true });
  }
}

function publicOf(privateKeyPem: string): string {
  return createPublicKey(privateKeyPem).export({ type: 'spki', format: 'pem' }).toString();
}
