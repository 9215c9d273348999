/**
 * The hub's ACME account, kept under DIR/acme/account.json (0600, the folder 0700): the
 * account key sealed with the hub's SecretBox (a copy of the file alone reveals nothing), the
 * directory it was registered at, and the account URL once the server gave one. The key is made
 * once, on the first order; the same key is registered again if the directory changes or the
 * server no longer knows the account.
 */
import { chmod, mkdir, readFile, rename, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { z } from 'zod';
import type { SecretBox } from '../../secret-box.ts';
import { AccountKey } from './acme-jws.ts';

export const ACME_DIR = 'acme';
export const ACCOUNT_FILE = 'account.json';
/** What the sealed key is bound to: it opens nowhere else. */
const SEAL_CONTEXT = 'acme.account-key';

const accountFile = z.object({
  version: z.literal(1),
  directoryUrl: z.string(),
  accountUrl: z.string().nullable(),
  /** The contact the account was registered or last updated with. */
  contact: z.string().nullable().default(null),
  key: z.string(),
});

export interface AcmeAccount {
  key: AccountKey;
  /** The account URL (the JWS `kid`) at this directory, or null before registration. */
  url: string | null;
  /** The contact address the server has for it (null: none, or not registered yet). */
  contact: string | null;
}

export class AcmeAccountFile {
  readonly #dir: string;
  readonly #secrets: SecretBox;
  readonly #directoryUrl: string;
  #account: AcmeAccount | null = null;
  #loading: Promise<AcmeAccount> | null = null;
  /** Writes one after another, so the file always holds the last state. */
  #writing: Promise<void> = Promise.resolve();

  constructor(dataDir: string, secrets: SecretBox, directoryUrl: string) {
    this.#dir = join(dataDir, ACME_DIR);
    this.#secrets = secrets;
    this.#directoryUrl = directoryUrl;
  }

  /** The account, read once (made and written on first use). A file that does not parse or open stops here with its path. */
  load(): Promise<AcmeAccount> {
    this.#loading ??= this.#read().catch((err: unknown) => {
      this.#loading = null;
      throw err;
    });
    return this.#loading;
  }

  async #read(): Promise<AcmeAccount> {
    const file = join(this.#dir, ACCOUNT_FILE);
    let text: string | null = null;
    try {
      text = await readFile(file, 'utf8');
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code !== 'ENOENT') throw err;
    }
    if (text === null) {
      this.#account = { key: AccountKey.generate(), url: null, contact: null };
      await this.#write();
      return this.#account;
    }
    let parsed: z.infer<typeof accountFile>;
    try {
      parsed = accountFile.parse(JSON.parse(text));
    } catch {
      throw new Error(`${file} is not a dockfleet ACME account file; move it away to register a new account`);
    }
    const key = AccountKey.fromPem(this.#secrets.openText(parsed.key, SEAL_CONTEXT));
    const same = parsed.directoryUrl === this.#directoryUrl;
    this.#account = { key, url: same ? parsed.accountUrl : null, contact: same ? parsed.contact : null };
    return this.#account;
  }

  /** Records the account URL and the contact the server now has (null URL: the server forgot the account). */
  async saveRegistration(url: string | null, contact: string | null): Promise<void> {
    const account = await this.load();
    account.url = url;
    account.contact = url === null ? null : contact;
    await this.#write();
  }

  #write(): Promise<void> {
    const next = this.#writing.then(() => this.#writeNow());
    this.#writing = next.catch(() => {});
    return next;
  }

  async #writeNow(): Promise<void> {
    const account = this.#account!;
    await mkdir(this.#dir, { recursive: true, mode: 0o700 });
    const body = { version: 1, directoryUrl: this.#directoryUrl, accountUrl: account.url, contact: account.contact, key: this.#secrets.seal(account.key.toPem(), SEAL_CONTEXT) };
    const file = join(this.#dir, ACCOUNT_FILE);
    const temp = `${file}.${process.pid}.tmp`;
    await writeFile(temp, `${JSON.stringify(body, null, 2)}\n`, { mode: 0o600 });
    await chmod(temp, 0o600);
    await rename(temp, file);
  }
}
