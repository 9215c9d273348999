/**
 * Enrollment: single-use codes for a named node, fleet join tokens whose nodes wait as pending,
 * and redemption. A code is stored as a hash; redemption either creates the node with the
 * agent's public key and uses up the code in one transaction, or changes nothing.
 */
import { randomUUID } from 'node:crypto';
import { DockfleetError } from '../protocol/errors.ts';
import { hashSecret, mintCode, parseCode } from '../protocol/enrollment-code.ts';
import { keyIdOf, parseEd25519PublicKey } from '../protocol/node-keys.ts';
import type { NodeKeyRecord, NodeRecord, Store } from '../store/store.ts';
import type { NodeRegistry } from './node-registry.ts';
import type { HostRebuilds, ReplaceSecrets } from './rebuild/host-rebuilds.ts';

export const DEFAULT_CODE_TTL_S = 15 * 60;
export const DEFAULT_JOIN_TTL_S = 24 * 3600;

export class Enrollment {
  readonly #store: Store;
  readonly #registry: NodeRegistry;
  readonly #caDigest: string;
  /** Codes that take over an existing node, and the rebuild that follows (hub/rebuild/). */
  #replacements: HostRebuilds | null = null;

  constructor(store: Store, registry: NodeRegistry, caDigest: string) {
    this.#store = store;
    this.#registry = registry;
    this.#caDigest = caDigest;
  }

  useReplacements(replacements: HostRebuilds): void {
    this.#replacements = replacements;
  }

  /** `replace`: a code for a host that takes over the existing node NAME (`enroll NAME --replace`). */
  async createCode(name: string, ttlSeconds = DEFAULT_CODE_TTL_S, replace: ReplaceSecrets | null = null): Promise<{ name: string; code: string; expiresAt: string }> {
    if (replace === null) this.#assertNameFree(name);
    else if (!this.#replacements) throw new DockfleetError('invalid_state', 'this hub cannot replace nodes');
    const { code, secretHash } = mintCode('single', this.#caDigest);
    const now = Date.now();
    const expiresAt = now + ttlSeconds * 1000;
    const record = { secretHash, kind: 'single' as const, nodeName: name, createdAt: now, expiresAt, usedAt: null };
    if (replace === null) await this.#store.insertCode(record);
    else await this.#replacements!.mintCode(record, replace);
    return { name, code, expiresAt: new Date(expiresAt).toISOString() };
  }

  async createJoinToken(ttlSeconds = DEFAULT_JOIN_TTL_S): Promise<{ token: string; expiresAt: string }> {
    const { code, secretHash } = mintCode('join', this.#caDigest);
    const now = Date.now();
    const expiresAt = now + ttlSeconds * 1000;
    await this.#store.insertCode({ secretHash, kind: 'join', nodeName: null, createdAt: now, expiresAt, usedAt: null });
    return { token: code, expiresAt: new Date(expiresAt).toISOString() };
  }

  /** Redeems a code for the agent's public key; returns the created node. */
  async enroll(body: { code: string; name?: string | undefined; publicKey: string }): Promise<NodeRecord> {
    const parsed = parseCode(body.code);
    if (parsed.caDigest !== this.#caDigest) throw new DockfleetError('code_invalid', 'enrollment code was not minted by this hub');
    const secretHash = hashSecret(parsed.secret);
    const record = await this.#store.getCode(secretHash);
    if (!record || record.kind !== parsed.kind) throw new DockfleetError('code_invalid', 'unknown enrollment code');
    const now = Date.now();
    if (record.kind === 'single' && record.usedAt !== null) throw new DockfleetError('code_used', 'enrollment code was already used');
    if (record.expiresAt <= now) throw new DockfleetError('code_expired', 'enrollment code has expired');
    const name = record.kind === 'single' ? record.nodeName! : body.name;
    if (name === undefined) throw new DockfleetError('bad_request', 'a join token needs a node name (--name)');
    if (body.name !== undefined && body.name !== name) {
      throw new DockfleetError('bad_request', `this code is for node ${name}, not ${body.name}`);
    }
    const publicKey = parseEd25519PublicKey(body.publicKey);
    if (!publicKey) throw new DockfleetError('validation_failed', 'publicKey must be an Ed25519 public key (PEM)');
    const publicKeyPem = publicKey.export({ type: 'spki', format: 'pem' }).toString();
    if (record.kind === 'single' && (await this.#replacements?.isReplaceCode(secretHash))) {
      if (await this.#store.getNodeKey(keyIdOf(publicKeyPem))) throw new DockfleetError('validation_failed', 'this public key is already enrolled');
      await this.#replacements!.takeOver(secretHash, name, { keyId: keyIdOf(publicKeyPem), pem: publicKeyPem });
      return this.#registry.byName(name)!;
    }
    this.#assertNameFree(name);

    const nodeId = randomUUID();
    const node: NodeRecord = {
      id: nodeId,
      name,
      state: record.kind === 'single' ? 'active' : 'pending',
      createdAt: now,
      approvedAt: record.kind === 'single' ? now : null,
      revokedAt: null,
      lastSeen: null,
      facts: null,
    };
    const key: NodeKeyRecord = { keyId: keyIdOf(publicKeyPem), nodeId, publicKey: publicKeyPem, state: 'active', createdAt: now };
    if (await this.#store.getNodeKey(key.keyId)) throw new DockfleetError('validation_failed', 'this public key is already enrolled');
    if (record.kind === 'single') await this.#store.redeemCode(secretHash, now, node, key);
    else await this.#store.createNode(node, key);
    this.#registry.add(node);
    return node;
  }

  #assertNameFree(name: string): void {
    const existing = this.#registry.byName(name);
    if (existing && existing.state !== 'revoked') throw new DockfleetError('name_taken', `a node named ${name} already exists`);
  }
}
