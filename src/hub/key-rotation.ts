/**
 * Key rotation without downtime, over the node's live link:
 *   1. prepare: the agent makes a new key pair, keeps it beside the current one, and answers
 *      with the public key and a proof signed by the new key;
 *   2. the hub makes that key the node's only active key (the old one never works again);
 *   3. commit: the agent promotes the new key. The link itself stays up throughout.
 * If the link drops between 2 and 3, the agent finds its current key retired on reconnect and
 * promotes the prepared key it kept.
 */
import { DockfleetError } from '../protocol/errors.ts';
import { ROTATE_PATH, rotatePrepared } from '../protocol/inventory.ts';
import { keyIdOf, parseEd25519PublicKey, rotationProofPayload, verifySignature } from '../protocol/node-keys.ts';
import type { Store } from '../store/store.ts';
import type { NodeRegistry } from './node-registry.ts';

export async function rotateNodeKey(registry: NodeRegistry, store: Store, name: string): Promise<{ keyId: string }> {
  const link = registry.requireLocalLink(name); // the new key is recorded on the link itself
  const prepared = await link.requestJson({
    method: 'POST',
    path: ROTATE_PATH,
    headers: { 'content-type': 'application/json' },
    body: Buffer.from(JSON.stringify({ phase: 'prepare' })),
    timeoutMs: 10_000,
  });
  const parsed = rotatePrepared.safeParse(prepared.body);
  if (prepared.status !== 200 || !parsed.success) throw new DockfleetError('protocol_error', `node ${name} could not prepare a new key`);
  const { publicKey, keyId, proof } = parsed.data;
  const key = parseEd25519PublicKey(publicKey);
  if (!key || keyIdOf(publicKey) !== keyId || !verifySignature(key, rotationProofPayload(name, keyId), proof)) {
    throw new DockfleetError('protocol_error', `node ${name} sent an invalid new key`);
  }
  await store.replaceNodeKey(link.nodeId, { keyId, nodeId: link.nodeId, publicKey, state: 'active', createdAt: Date.now() }, Date.now());
  link.keyId = keyId;
  const committed = await link.requestJson({
    method: 'POST',
    path: ROTATE_PATH,
    headers: { 'content-type': 'application/json' },
    body: Buffer.from(JSON.stringify({ phase: 'commit', keyId })),
    timeoutMs: 10_000,
  });
  if (committed.status !== 200) throw new DockfleetError('protocol_error', `node ${name} did not commit its new key`);
  return { keyId };
}
