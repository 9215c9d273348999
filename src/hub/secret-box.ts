/**
 * Secrets at rest at the hub: AES-256-GCM (node:crypto) under the hub's master key, which is
 * kept outside the data directory and the database (where it comes from: backup/master-key.ts).
 * A copy of the database, or of the whole data directory, reveals no secret. Each sealed value is
 * bound to what it belongs to (the associated data, e.g. a job id), so a sealed value moved to
 * another row does not open there.
 *
 * Sealed form: `v1.` + base64url(12-byte IV ‖ ciphertext ‖ 16-byte tag).
 */
import { createCipheriv, createDecipheriv, createHmac, hkdfSync, randomBytes } from 'node:crypto';
import { DockfleetError } from '../protocol/errors.ts';
import { loadMasterKey, type MasterKeyOptions } from './backup/master-key.ts';

const KEY_BYTES = 32;
const IV_BYTES = 12;
const TAG_BYTES = 16;
const PREFIX = 'v1.';

export class SecretBox {
  readonly #key: Buffer;
  /** HMAC key for digests of secret values, derived (HKDF) so it is never the sealing key. */
  readonly #digestKey: Buffer;

  constructor(key: Buffer) {
    if (key.length !== KEY_BYTES) throw new DockfleetError('state_corrupt', `the master key must be ${KEY_BYTES} bytes`);
    this.#key = Buffer.from(key);
    this.#digestKey = Buffer.from(hkdfSync('sha256', this.#key, Buffer.alloc(0), 'dockfleet.secret-digest.v1', KEY_BYTES));
  }

  /** A keyed digest (HMAC-SHA256, hex): equal inputs give equal digests, but without this
   * hub's master key nobody can test a guessed value against one (e.g. from a database copy). */
  digest(data: string): string {
    return createHmac('sha256', this.#digestKey).update(data, 'utf8').digest('hex');
  }

  /** The box under the hub's master key, found (or on a first start made) as master-key.ts says. */
  static async open(opts: MasterKeyOptions): Promise<SecretBox> {
    return new SecretBox((await loadMasterKey(opts)).key);
  }

  /** Encrypts `plaintext`, bound to `context` (it must be given again to open it). */
  seal(plaintext: string | Buffer, context: string): string {
    const iv = randomBytes(IV_BYTES);
    const cipher = createCipheriv('aes-256-gcm', this.#key, iv);
    cipher.setAAD(Buffer.from(context, 'utf8'));
    const body = Buffer.concat([cipher.update(plaintext), cipher.final()]);
    return PREFIX + Buffer.concat([iv, body, cipher.getAuthTag()]).toString('base64url');
  }

  /** Decrypts a sealed value; a value sealed under another key or context is state_corrupt. */
  open(sealed: string, context: string): Buffer {
    const raw = sealed.startsWith(PREFIX) ? Buffer.from(sealed.slice(PREFIX.length), 'base64url') : null;
    if (!raw || raw.length < IV_BYTES + TAG_BYTES) throw new DockfleetError('state_corrupt', 'a sealed secret is malformed');
    try {
      const decipher = createDecipheriv('aes-256-gcm', this.#key, raw.subarray(0, IV_BYTES));
      decipher.setAAD(Buffer.from(context, 'utf8'));
      decipher.setAuthTag(raw.subarray(raw.length - TAG_BYTES));
      return Buffer.concat([decipher.update(raw.subarray(IV_BYTES, raw.length - TAG_BYTES)), decipher.final()]);
    } catch {
      // No detail: the reason (wrong key, tampered value) must not echo any of the value.
      throw new DockfleetError('state_corrupt', "a sealed secret does not open under this hub's master key");
    }
  }

  openText(sealed: string, context: string): string {
    return this.open(sealed, context).toString('utf8');
  }
}
