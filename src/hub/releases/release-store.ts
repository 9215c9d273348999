/**
 * The hub's agent releases, under DIR/releases/: <version>.tgz and <version>.sig.json. A release
 * is checked against the hub's configured release key when it is added (to catch a wrong key or
 * a damaged upload early); the agents check again on their own with the key they pinned.
 */
import { mkdir, readFile, readdir, stat } from 'node:fs/promises';
import { join } from 'node:path';
import { writeFileDurably } from '../../lib/write-file-durably.ts';
import { verifyRelease } from '../../lib/release-keys.ts';
import { DockfleetError } from '../../protocol/errors.ts';
import { releaseSignature, releaseVersionSchema, type ReleaseSignature, type ReleaseView } from '../../protocol/releases.ts';

export class ReleaseStore {
  readonly dir: string;
  /** The fleet's release key (`ed25519:…`), or null when the hub was started without one. */
  readonly releaseKey: string | null;

  constructor(dir: string, releaseKey: string | null) {
    this.dir = dir;
    this.releaseKey = releaseKey;
  }

  async add(pkg: Buffer, signature: unknown): Promise<ReleaseView> {
    if (this.releaseKey === null) throw new DockfleetError('release_key_missing', 'this hub has no release key (start it with --release-key); it offers no releases');
    const check = verifyRelease(pkg, signature, this.releaseKey);
    if (!check.ok) throw new DockfleetError('release_unsigned', `release refused: ${check.reason}`);
    const { version } = check.manifest;
    await mkdir(this.dir, { recursive: true, mode: 0o700 });
    await writeFileDurably(join(this.dir, `${version}.tgz`), pkg, 0o600);
    await writeFileDurably(join(this.dir, `${version}.sig.json`), `${JSON.stringify(signature)}\n`, 0o600);
    return { version, sha256: check.manifest.sha256, size: pkg.length, addedAt: new Date().toISOString() };
  }

  async list(): Promise<ReleaseView[]> {
    const names = await readdir(this.dir).catch(() => [] as string[]);
    const views: ReleaseView[] = [];
    for (const name of names.filter((n) => n.endsWith('.sig.json')).sort()) {
      const version = name.slice(0, -'.sig.json'.length);
      const release = await this.get(version).catch(() => null);
      if (!release) continue;
      const info = await stat(join(this.dir, `${version}.tgz`));
      views.push({ version, sha256: release.signature.manifest.sha256, size: release.pkg.length, addedAt: info.mtime.toISOString() });
    }
    return views;
  }

  /** A stored release as it is (not verified again here: each agent verifies it alone). */
  async get(version: string): Promise<{ pkg: Buffer; signature: ReleaseSignature } | null> {
    if (!releaseVersionSchema.safeParse(version).success) return null;
    try {
      const [pkg, sig] = await Promise.all([readFile(join(this.dir, `${version}.tgz`)), readFile(join(this.dir, `${version}.sig.json`), 'utf8')]);
      const parsed = releaseSignature.safeParse(JSON.parse(sig));
      return parsed.success ? { pkg, signature: parsed.data } : null;
    } catch {
      return null;
    }
  }
}
