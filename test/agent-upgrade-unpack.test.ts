/**
 * A release unpacks only inside its own directory (issue 16): names that climb out (`..`),
 * absolute names and links of any kind are refused, and nothing is written outside. Also: the
 * signature covers the manifest, so a package changed after signing, or signed by another key,
 * or named as another version, does not verify.
 */
import assert from 'node:assert/strict';
import { mkdtemp, readFile, readdir, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { gzipSync } from 'node:zlib';
import { after, test } from 'node:test';
import tarStream from 'tar-stream';
import { extractRelease, safeEntryPath } from '../src/agent/upgrade/extract-release.ts';
import { generateReleaseKey, signRelease, verifyRelease } from '../src/lib/release-keys.ts';

type Entry = { name: string; type?: 'file' | 'directory' | 'symlink' | 'link'; body?: string; linkname?: string };

async function tgz(entries: Entry[]): Promise<Buffer> {
  const pack = tarStream.pack();
  const chunks: Buffer[] = [];
  pack.on('data', (c: unknown) => chunks.push(c as Buffer));
  const done = new Promise<void>((resolve) => pack.on('end', () => resolve()));
  for (const e of entries) {
    await new Promise<void>((resolve, reject) => {
      const header = { name: e.name, type: e.type ?? 'file', ...(e.linkname ? { linkname: e.linkname } : {}) };
      const cb = (err?: Error | null): void => (err ? reject(err) : resolve());
      if (header.type === 'file') pack.entry(header, e.body ?? '', cb);
      else pack.entry(header, cb);
    });
  }
  pack.finalize();
  await done;
  return gzipSync(Buffer.concat(chunks));
}

const work = await mkdtemp(join(tmpdir(), 'dockfleet-unpack-'));
after(() => rm(work, { recursive: true, force: true }));

test("entry names: npm pack's package/ prefix is dropped; climbing out and absolute names are refused", () => {
  assert.equal(safeEntryPath('package/src/a.ts'), 'src/a.ts');
  assert.equal(safeEntryPath('./bin/dockfleet.js'), 'bin/dockfleet.js');
  assert.equal(typeof safeEntryPath('../etc/passwd'), 'object');
  assert.equal(typeof safeEntryPath('src/../../x'), 'object');
  assert.equal(typeof safeEntryPath('/etc/passwd'), 'object');
  assert.equal(typeof safeEntryPath('package/../../x'), 'object');
});

test('a well-formed release unpacks into its directory', async () => {
  const dest = join(work, 'ok');
  await extractRelease(
    await tgz([
      { name: 'package/package.json', body: '{}' },
      { name: 'package/src/a.ts', body: 'x' },
    ]),
    dest,
  );
  assert.equal(await readFile(join(dest, 'src', 'a.ts'), 'utf8'), 'x');
});

for (const [what, entries] of [
  ['a name that climbs out', [{ name: 'src/../../escaped.txt', body: 'x' }]],
  ['an absolute name', [{ name: join(work, 'absolute.txt'), body: 'x' }]],
  ['a symbolic link', [{ name: 'src/link', type: 'symlink', linkname: '/etc' }]],
  [
    'a hard link',
    [
      { name: 'src/a.ts', body: 'x' },
      { name: 'src/hard', type: 'link', linkname: '/etc/passwd' },
    ],
  ],
] as Array<[string, Entry[]]>) {
  test(`a release holding ${what} is refused and writes nothing outside`, async () => {
    const before = (await readdir(work)).sort();
    const dest = join(work, `bad-${before.length}`);
    await assert.rejects(extractRelease(await tgz(entries), dest));
    const created = (await readdir(work)).filter((n) => !before.includes(n));
    assert.deepEqual(created, [`bad-${before.length}`], 'only the release directory was made');
  });
}

test('bytes that are not a gzipped tar are refused', async () => {
  await assert.rejects(extractRelease(Buffer.from('not a tarball'), join(work, 'garbage')), /not a gzipped tar/);
});

test('verification: a changed package, another key or another version does not verify', () => {
  const key = generateReleaseKey();
  const pkg = Buffer.from('release bytes');
  const sig = signRelease(pkg, '1.2.3', key.privateKeyPem);
  assert.equal(verifyRelease(pkg, sig, key.publicKey, '1.2.3').ok, true);
  const changed = Buffer.from('release bytez');
  assert.match((verifyRelease(changed, sig, key.publicKey) as { reason: string }).reason, /SHA-256/);
  assert.match((verifyRelease(pkg, sig, generateReleaseKey().publicKey) as { reason: string }).reason, /not signed by the pinned release key/);
  assert.match((verifyRelease(pkg, sig, key.publicKey, '1.2.4') as { reason: string }).reason, /names version 1\.2\.3/);
  // The manifest is what is signed: raising the version in it breaks the signature.
  const forged = { ...sig, manifest: { ...sig.manifest, version: '9.9.9' } };
  assert.match((verifyRelease(pkg, forged, key.publicKey) as { reason: string }).reason, /not signed/);
});
