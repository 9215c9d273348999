/**
 * This browser's operator key (issue 13): an Ed25519 key pair made with WebCrypto, its private half
 * non-extractable, kept in IndexedDB — one per user per browser. Its public half is registered at
 * the hub (POST /api/v1/operator-keys) so people can tell whose key it is; a host obeys it only once
 * its owner lists it in the host's policy file. Nothing here ever reads the private key's bytes.
 *
 * Kept free of zod and protocol/intent.ts: the containers page reads `browserKey` to know whether
 * signed hosts' actions can be offered, and it is part of the first load.
 */
import { post } from './api.ts';
import { createStore } from './store.ts';

const DB_NAME = 'dockfleet';
const DB_STORE = 'operator-keys';

/** A key as this browser keeps it, under the user's name. */
export interface BrowserKey {
  user: string;
  keyPair: CryptoKeyPair;
  /** Policy-file form, `ed25519:<base64url>`. */
  publicKey: string;
  /** lib/operator-key-fingerprint.ts's short fingerprint, computed the same way. */
  fingerprint: string;
  name: string;
  createdAt: number;
}

/** undefined while it is being read; null when this browser holds no key for the user. */
export type BrowserKeyState = { user: string; key: BrowserKey | null } | undefined;
export const browserKey = createStore<BrowserKeyState>(undefined);

function b64url(bytes: Uint8Array): string {
  let s = '';
  for (const b of bytes) s += String.fromCharCode(b);
  return btoa(s).replace(/\+/g, '-').replace(/\//g, '_').replace(/=+$/, '');
}

/** The first 20 hex digits of SHA-256 over the raw public key, as the hub and the CLI name it. */
export async function fingerprintOf(raw: Uint8Array): Promise<string> {
  const hash = new Uint8Array(await crypto.subtle.digest('SHA-256', raw as BufferSource));
  return [...hash]
    .map((b) => b.toString(16).padStart(2, '0'))
    .join('')
    .slice(0, 20);
}

function openDb(): Promise<IDBDatabase> {
  return new Promise((resolve, reject) => {
    const req = indexedDB.open(DB_NAME, 1);
    req.onupgradeneeded = () => {
      if (!req.result.objectStoreNames.contains(DB_STORE)) req.result.createObjectStore(DB_STORE, { keyPath: 'user' });
    };
    req.onsuccess = () => resolve(req.result);
    req.onerror = () => reject(req.error ?? new Error('IndexedDB could not be opened'));
  });
}

async function tx<T>(mode: IDBTransactionMode, work: (store: IDBObjectStore) => IDBRequest): Promise<T> {
  const db = await openDb();
  try {
    return await new Promise<T>((resolve, reject) => {
      const req = work(db.transaction(DB_STORE, mode).objectStore(DB_STORE));
      req.onsuccess = () => resolve(req.result as T);
      req.onerror = () => reject(req.error ?? new Error('IndexedDB request failed'));
    });
  } finally {
    db.close();
  }
}

/** Reads the user's key from IndexedDB into `browserKey` (once per user unless `force`). */
export async function loadBrowserKey(user: string, force = false): Promise<BrowserKey | null> {
  const now = browserKey.get();
  if (!force && now && now.user === user) return now.key;
  let key: BrowserKey | null = null;
  try {
    key = (await tx<BrowserKey | undefined>('readonly', (s) => s.get(user))) ?? null;
  } catch {
    key = null; // No IndexedDB (a private window may refuse it): this browser simply has no key.
  }
  browserKey.set({ user, key });
  return key;
}

/** The platform in words, for the key's default name ("browser on Linux x86_64"). */
export function platformName(): string {
  const nav = navigator as Navigator & { userAgentData?: { platform?: string } };
  return nav.userAgentData?.platform || navigator.platform || 'this computer';
}

/**
 * Makes the user's key in this browser, registers its public half at the hub, and keeps it.
 * Nothing is kept when the hub refuses it, so a failed attempt leaves no orphan key behind.
 */
export async function createBrowserKey(user: string, name: string): Promise<BrowserKey> {
  if (!crypto?.subtle) throw new Error('This page is not in a secure context, so the browser offers no WebCrypto.');
  let keyPair: CryptoKeyPair;
  try {
    keyPair = (await crypto.subtle.generateKey({ name: 'Ed25519' }, false, ['sign', 'verify'])) as CryptoKeyPair;
  } catch {
    throw new Error('This browser cannot make Ed25519 keys with WebCrypto (Chrome 137+, Firefox 129+ and Safari 17+ can). Use `dockfleet operator-key create` instead.');
  }
  const raw = new Uint8Array(await crypto.subtle.exportKey('raw', keyPair.publicKey));
  const publicKey = `ed25519:${b64url(raw)}`;
  const key: BrowserKey = { user, keyPair, publicKey, fingerprint: await fingerprintOf(raw), name, createdAt: Date.now() };
  await post('/api/v1/operator-keys', { publicKey, name });
  await tx('readwrite', (s) => s.put(key));
  browserKey.set({ user, key });
  return key;
}

/** Forgets this browser's key (after it was revoked at the hub, or to make a new one). */
export async function forgetBrowserKey(user: string): Promise<void> {
  await tx('readwrite', (s) => s.delete(user));
  browserKey.set({ user, key: null });
}
