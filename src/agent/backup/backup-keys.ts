/**
 * Repository passwords on this host (key custody, per node, chosen in the host's policy file):
 *  - host-only: the agent makes the password and keeps it in STATE/backup-keys/ (0600); it
 *    never leaves the host, so a lost host means lost backups unless its owner copied it.
 *  - escrow (the default): as host-only, and the agent also makes a recovery code, wraps the
 *    password under it with age's passphrase recipient (scrypt), and hands the hub only the
 *    wrapped form. The code goes to the operator sealed to the filer's own age recipient (the
 *    hub relays ciphertext), and stays readable on the host in the same 0600 file.
 *  - hub-managed: the hub sends the password in the job's sealed secrets (RESTIC_PASSWORD);
 *    nothing is kept here.
 * One file per repository, named by the SHA-256 of its resolved location.
 */
import { createHash, randomBytes } from 'node:crypto';
import { mkdir, readdir, readFile } from 'node:fs/promises';
import { join } from 'node:path';
import { Decrypter, Encrypter, armor } from 'age-encryption';
import { z } from 'zod';
import type { CustodyMode } from '../../protocol/volume-backup.ts';
import { writeFileDurably } from '../../lib/write-file-durably.ts';

export const KEYS_DIR = 'backup-keys';

const keyFile = z.strictObject({
  v: z.literal(1),
  repository: z.string(),
  password: z.string().min(16),
  recoveryCode: z.string().nullable(),
  createdAt: z.number(),
});
type KeyFile = z.infer<typeof keyFile>;

export interface RepositoryKey {
  password: string;
  /** Set when this call made the key under escrow: what goes back in the job's result. */
  created: { escrowedKey: string | null; recoveryCodeSealed: string | null } | null;
}

/** A recovery code a person can read out: 6 groups of 5 base32 characters (150 bits). */
function newRecoveryCode(): string {
  const alphabet = 'ABCDEFGHJKLMNPQRSTUVWXYZ23456789';
  const bytes = randomBytes(30);
  let code = '';
  for (let i = 0; i < 30; i++) code += alphabet[bytes[i]! % 32]! + ((i + 1) % 5 === 0 && i < 29 ? '-' : '');
  return code;
}

async function ageArmored(plain: string, to: { passphrase?: string; recipient?: string }): Promise<string> {
  const e = new Encrypter();
  if (to.passphrase !== undefined) e.setPassphrase(to.passphrase);
  if (to.recipient !== undefined) e.addRecipient(to.recipient);
  return armor.encode(await e.encrypt(plain));
}

/** An escrow recovery code kept on this host (`dockfleet agent backup-recovery-code`). */
export interface KeptRecoveryCode {
  repository: string;
  recoveryCode: string;
  createdAt: number;
}

/**
 * The recovery codes in STATE/backup-keys/ (escrow custody), oldest key first: how the operator
 * reads the code of a key a scheduled backup made, which no one was shown. A damaged file is an error.
 */
export async function keptRecoveryCodes(stateDir: string): Promise<KeptRecoveryCode[]> {
  const dir = join(stateDir, KEYS_DIR);
  const names = await readdir(dir).catch((err: NodeJS.ErrnoException) => {
    if (err.code === 'ENOENT') return [] as string[];
    throw err;
  });
  const out: KeptRecoveryCode[] = [];
  for (const name of names.filter((n) => n.endsWith('.json')).sort()) {
    let parsed: ReturnType<typeof keyFile.safeParse> | null = null;
    try {
      parsed = keyFile.safeParse(JSON.parse(await readFile(join(dir, name), 'utf8')));
    } catch {
      /* reported below */
    }
    if (!parsed?.success) throw new Error(`the key file ${join(dir, name)} is damaged`);
    if (parsed.data.recoveryCode !== null) out.push({ repository: parsed.data.repository, recoveryCode: parsed.data.recoveryCode, createdAt: parsed.data.createdAt });
  }
  return out.sort((a, b) => a.createdAt - b.createdAt);
}

export class BackupKeys {
  readonly #dir: string;

  constructor(stateDir: string) {
    this.#dir = join(stateDir, KEYS_DIR);
  }

  #path(repository: string): string {
    return join(this.#dir, `${createHash('sha256').update(repository).digest('hex').slice(0, 32)}.json`);
  }

  async #read(repository: string): Promise<KeyFile | null> {
    let text: string;
    try {
      text = await readFile(this.#path(repository), 'utf8');
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code === 'ENOENT') return null;
      throw err;
    }
    const parsed = keyFile.safeParse(JSON.parse(text));
    if (!parsed.success) throw new Error(`the key file for ${repository} in ${this.#dir} is damaged; restore it from the escrowed copy`);
    return parsed.data;
  }

  /**
   * The password for this repository. `mayCreate`: no repository exists there yet, so a new key
   * may be made (never when one exists: a new password would not open it).
   */
  async password(repository: string, custody: CustodyMode, opts: { hubPassword?: string | undefined; mayCreate: boolean; revealTo?: string | undefined }): Promise<RepositoryKey | null> {
    if (custody === 'hub-managed') {
      if (!opts.hubPassword) throw new Error('this host keeps its backup keys hub-managed, and the job carries no RESTIC_PASSWORD in its sealed secrets');
      return { password: opts.hubPassword, created: null };
    }
    const known = await this.#read(repository);
    if (known) return { password: known.password, created: null };
    if (!opts.mayCreate) return null;
    const password = randomBytes(32).toString('base64url');
    const recoveryCode = custody === 'escrow' ? newRecoveryCode() : null;
    await mkdir(this.#dir, { recursive: true, mode: 0o700 });
    await writeFileDurably(this.#path(repository), `${JSON.stringify({ v: 1, repository, password, recoveryCode, createdAt: Date.now() } satisfies KeyFile)}\n`, 0o600);
    if (recoveryCode === null) return { password, created: { escrowedKey: null, recoveryCodeSealed: null } };
    return {
      password,
      created: {
        escrowedKey: await ageArmored(password, { passphrase: recoveryCode }),
        recoveryCodeSealed: opts.revealTo ? await ageArmored(recoveryCode, { recipient: opts.revealTo }) : null,
      },
    };
  }

  /**
   * A replacement host (issue 14, item 6): the escrowed key the hub kept, unwrapped with the
   * operator's recovery code, becomes this host's key file for the repository, so later backups
   * go on in the same repository. Null when the code does not open it.
   */
  async adoptEscrowed(repository: string, wrappedKey: string, recoveryCode: string): Promise<string | null> {
    let password: string;
    try {
      const d = new Decrypter();
      d.addPassphrase(recoveryCode.trim());
      password = await d.decrypt(armor.decode(wrappedKey), 'text');
    } catch {
      return null;
    }
    await mkdir(this.#dir, { recursive: true, mode: 0o700 });
    await writeFileDurably(this.#path(repository), `${JSON.stringify({ v: 1, repository, password, recoveryCode: recoveryCode.trim(), createdAt: Date.now() } satisfies KeyFile)}\n`, 0o600);
    return password;
  }
}
