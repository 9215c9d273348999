/** Where the hub keeps operator keys' public halves, one row per key, with the user it belongs to. */

export interface OperatorKeyRecord {
  /** The key's short fingerprint (lib/operator-key-fingerprint.ts). */
  id: string;
  userId: string;
  /** The public key in policy-file form, `ed25519:<base64url>`. */
  publicKey: string;
  name: string;
  createdAt: number;
  revokedAt: number | null;
}

/** A record with its owner's name, for the admin's view of every user's keys. */
export interface OperatorKeyWithUser extends OperatorKeyRecord {
  userName: string;
}

export interface OperatorKeyStore {
  /** False when the key (or its fingerprint) is on record already, revoked or not. */
  insertOperatorKey(record: OperatorKeyRecord): Promise<boolean>;
  getOperatorKey(id: string): Promise<OperatorKeyRecord | null>;
  /** One user's keys, revoked ones included, oldest first. */
  listOperatorKeys(userId: string): Promise<OperatorKeyRecord[]>;
  /** Every user's keys with the user's name, oldest first. */
  listAllOperatorKeys(): Promise<OperatorKeyWithUser[]>;
  /** Marks a key revoked; false when it was revoked already or does not exist. */
  revokeOperatorKey(id: string, at: number): Promise<boolean>;
}
