/**
 * Secrets at rest at the hub: AES-256-GCM (node:crypto) under a master key kept outside the
 * database, in DIR/secrets.key (32 random bytes, 0600, made on first start beside
 * admin.token). A copy of the database alone reveals no secret. Each sealed value is bound to
 * what it belongs to (the associated data, e.g. a job id), so a sealed value moved to another
 * row does not open there.
 *
 * Sealed form: `v1.` + base64url(12-byte IV ‖ ciphertext ‖ 16-byte tag).
 */
import { createCipheriv, createDecipheriv, createHmac, hkdfSync, randomBytes } from 'node:crypto';
import { chmod, readFile, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { DockfleetError } from '../protocol/errors.ts';

export const SECRETS_KEY_FILE = 'secrets.key';
const KEY_BYTES = 32;
const IV_BYTES = 12;
const TAG_BYTES = 16;
const PREFIX = 'v1.';

export class SecretBox {
  readonly #key: Buffer;
  /** HMAC key for digests of secret values, derived (HKDF) so it is never the sealing key. */
  readonly #digestKey: Buffer;

  constructor(key: Buffer) {
    if (key.length !== KEY_BYTES) throw new DockfleetError('state_corrupt', `the secret key must be ${KEY_BYTES} bytes`);
    this.#key = Buffer.from(key);
    this.#digestKey = Buffer.from(hkdfSync('sha256', this.#key, Buffer.alloc(0), 'dockfleet.secret-digest.v1', KEY_BYTES));
  }

  /** A keyed digest (HMAC-SHA256, hex): equal inputs give equal digests, but without this
   * hub's secrets.key nobody can test a guessed value against one (e.g. from a database copy). */
  digest(data: string): string {
    return createHmac('sha256', this.#digestKey).update(data, 'utf8').digest('hex');
  }

  /** Reads DIR/secrets.key, making it (0600) on first start. A key of the wrong size stops the hub. */
  static async open(dataDir: string): Promise<SecretBox> {
    const file = join(dataDir, SECRETS_KEY_FILE);
    let key: Buffer;
    try {
      key = await readFile(file);
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code !== 'ENOENT') throw err;
      key = randomBytes(KEY_BYTES);
      // wx: two hubs starting on one fresh DIR never write two different keys.
      await writeFile(file, key, { mode: 0o600, flag: 'wx' }).catch(async (e: NodeJS.ErrnoException) => {
        if (e.code !== 'EEXIST') throw e;
        key = await readFile(file);
      });
    }
    await chmod(file, 0o600);
    if (key.length !== KEY_BYTES) throw new DockfleetError('state_corrupt', `${file} must hold exactly ${KEY_BYTES} bytes`);
    return new SecretBox(key);
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
      throw new DockfleetError('state_corrupt', 'a sealed secret does not open under this hub\'s secrets.key');
    }
  }

  openText(sealed: string, context: string): string {
    return this.open(sealed, context).toString('utf8');
  }
}
