/**
 * The agent's durable identity in --state: which hub (and its pinned CA), which node, and the
 * private key the agent made itself (0600, never sent anywhere). A key prepared for rotation
 * waits beside it in key.next.pem until the hub has switched.
 */
import { createPublicKey } from 'node:crypto';
import { mkdir, readFile, rename, rm, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { z } from 'zod';
import { generateNodeKey, keyIdOf, rotationProofPayload, signWith } from '../protocol/node-keys.ts';
import type { RotatePrepared } from '../protocol/inventory.ts';

const IDENTITY_FILE = 'identity.json';
const KEY_FILE = 'key.pem';
const NEXT_KEY_FILE = 'key.next.pem';

const identityFile = z.object({ v: z.literal(1), hubUrl: z.string(), node: z.string(), caPem: z.string() });

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

  /** Loads the identity in `dir`, or null when the agent was never enrolled there. */
  static async load(dir: string): Promise<AgentIdentity | null> {
    let text: string;
    try {
      text = await readFile(join(dir, IDENTITY_FILE), 'utf8');
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code === 'ENOENT') return null;
      throw err;
    }
    const data = identityFile.parse(JSON.parse(text));
    const privateKeyPem = await readFile(join(dir, KEY_FILE), 'utf8');
    return new AgentIdentity(dir, data, privateKeyPem, publicOf(privateKeyPem));
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
    const keyId = keyIdOf(publicOf(next));
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
