/** API tokens: random bearer secrets, stored as SHA-256 hashes. The first start writes the admin
 * token to DIR/admin.token (0600), as a cluster writes its admin kubeconfig. The token acts as
 * its own principal, named `admin.token` in the audit log and in /api/v1/me: it holds no name a
 * person might want (the first admin may be called `admin`), and it has no password, so nobody
 * signs in as it. */
import { createHash, randomBytes } from 'node:crypto';
import { chmod, readFile, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import type { Store } from '../store/store.ts';

export const ADMIN_TOKEN_FILE = 'admin.token';
export const ADMIN_USER_ID = 'admin';
/** The token's principal; hubs made before this name called it `admin` (renamed by a migration). */
export const ADMIN_TOKEN_PRINCIPAL = 'admin.token';

export function hashToken(token: string): string {
  return createHash('sha256').update(token).digest('hex');
}

export function newToken(): string {
  return `dft_${randomBytes(32).toString('base64url')}`;
}

/** The token in `file` (made 0600 with a new token when absent), as its hash: the file is the only place it is kept in clear. */
export async function ensureTokenFile(file: string): Promise<string> {
  let token: string;
  try {
    token = (await readFile(file, 'utf8')).trim();
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code !== 'ENOENT') throw err;
    token = newToken();
    await writeFile(file, `${token}\n`, { mode: 0o600, flag: 'wx' });
  }
  await chmod(file, 0o600);
  return hashToken(token);
}

/** Makes sure DIR/admin.token exists and that the store knows its hash. */
export async function ensureAdminToken(dataDir: string, store: Store): Promise<void> {
  const hash = await ensureTokenFile(join(dataDir, ADMIN_TOKEN_FILE));
  if (!(await store.getUser(ADMIN_USER_ID))) {
    await store.insertUser({ id: ADMIN_USER_ID, name: ADMIN_TOKEN_PRINCIPAL, role: 'admin', createdAt: Date.now(), disabledAt: null });
  }
  if (!(await store.getToken(hash))) {
    await store.insertToken({ tokenHash: hash, name: ADMIN_TOKEN_FILE, userId: ADMIN_USER_ID, createdAt: Date.now(), revokedAt: null });
  }
}
