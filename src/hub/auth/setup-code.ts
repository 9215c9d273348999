/**
 * The first-run setup code: proof that whoever creates the first admin controls the hub's
 * machine. While no user has a password, the hub keeps a random code in DIR/setup.code (0600,
 * beside admin.token; `dockfleet setup-code` prints it) and holds only its hash in memory.
 * It is compared in constant time and works once: the first setup that uses it claims it
 * (synchronously, so two racing setups cannot both pass) and, once the admin exists, the file
 * is deleted. A hub whose setup is done removes a leftover file when it starts.
 */
import { createHash, randomInt, timingSafeEqual } from 'node:crypto';
import { chmod, readFile, rm, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { z } from 'zod';
import { credentialsBody } from '../../protocol/api.ts';
import { DockfleetError } from '../../protocol/errors.ts';
import type { Store } from '../../store/store.ts';

export const SETUP_CODE_FILE = 'setup.code';

/** The setup request: credentials plus the code (checked by the route, so that a missing code
 * gets the same clear error as a wrong one). */
export const setupBody = credentialsBody.extend({ setupCode: z.string().max(200).optional() });

// Crockford's base32 without I, L, O, U: nothing to confuse when read off a terminal.
const ALPHABET = '0123456789ABCDEFGHJKMNPQRSTVWXYZ';
const GROUPS = 5;
const GROUP_LENGTH = 4;
const FORMAT = /^[0-9A-Z]{4}(-[0-9A-Z]{4}){4}$/;

function newCode(): string {
  const groups = Array.from({ length: GROUPS }, () => Array.from({ length: GROUP_LENGTH }, () => ALPHABET[randomInt(ALPHABET.length)]).join(''));
  return groups.join('-'); // 20 symbols of 5 bits: 100 bits
}

/** What people type: case, spaces and dashes do not matter. */
function digest(code: string): Buffer {
  return createHash('sha256')
    .update(code.toUpperCase().replace(/[\s-]+/g, ''))
    .digest();
}

/** Reads DIR/setup.code: the code, or null when there is none (setup done, or never started). */
export async function readSetupCode(dataDir: string): Promise<string | null> {
  try {
    const code = (await readFile(join(dataDir, SETUP_CODE_FILE), 'utf8')).trim();
    return FORMAT.test(code) ? code : null;
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'ENOENT') return null;
    throw err;
  }
}

export class SetupCode {
  readonly #file: string;
  #hash: Buffer | null;
  #claimed = false;

  private constructor(file: string, hash: Buffer | null) {
    this.#file = file;
    this.#hash = hash;
  }

  /** At hub start: while setup is needed, keeps (or makes) DIR/setup.code; otherwise removes it. */
  static async open(dataDir: string, store: Store): Promise<SetupCode> {
    const file = join(dataDir, SETUP_CODE_FILE);
    if (await store.hasPasswordUser()) {
      await rm(file, { force: true });
      return new SetupCode(file, null);
    }
    return new SetupCode(file, digest(await ensureCodeFile(dataDir, file)));
  }

  /** Whether setup is still open (a code exists and has not been used). */
  get isOpen(): boolean {
    return this.#hash !== null;
  }

  /** Checks the code and claims it for this setup; throws `setup_code_invalid` when it is
   * missing or wrong, `invalid_state` while another setup holds it or after it was used. */
  claim(given: string | undefined): void {
    if (this.#hash === null) throw new DockfleetError('invalid_state', 'setup is done already; sign in instead');
    const hint = "setup needs the one-time setup code: run `dockfleet setup-code` on the hub's machine";
    if (given === undefined || given.trim() === '') throw new DockfleetError('setup_code_invalid', hint);
    if (!timingSafeEqual(digest(given), this.#hash)) throw new DockfleetError('setup_code_invalid', `wrong setup code; ${hint}`);
    if (this.#claimed) throw new DockfleetError('invalid_state', 'another setup with this code is under way');
    this.#claimed = true;
  }

  /** The claimed setup did not happen (e.g. the store refused): the code works again. */
  release(): void {
    this.#claimed = false;
  }

  /** The first admin exists: the code never works again and its file is removed. */
  async consume(): Promise<void> {
    this.#hash = null;
    this.#claimed = false;
    await rm(this.#file, { force: true });
  }
}

/** The code in the file, kept across restarts until it is used; a new one when there is none. */
async function ensureCodeFile(dataDir: string, file: string): Promise<string> {
  const existing = await readSetupCode(dataDir);
  if (existing !== null) {
    await chmod(file, 0o600);
    return existing;
  }
  const code = newCode();
  await rm(file, { force: true });
  await writeFile(file, `${code}\n`, { mode: 0o600, flag: 'wx' });
  return code;
}
