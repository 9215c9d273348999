// The agent's volume file browser: confinement to the volume directory (every escape refused,
// symbolic links and swap races included), atomic uploads, and the HTTP/2 endpoint the hub calls.
// No Docker: each "volume" is a temp directory that resolveMountpoint maps a name to.
// Hard links are not tested: a hard link to a file outside a volume can only be made by someone
// who already sees both places (root on the host, or a container given both) — see confine.ts.
import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import fs, { constants } from 'node:fs';
import fsp from 'node:fs/promises';
import http2 from 'node:http2';
import type { AddressInfo } from 'node:net';
import os from 'node:os';
import path from 'node:path';
import { Readable } from 'node:stream';
import { after, before, describe, test } from 'node:test';
import { silentLogger } from '../src/lib/logger.ts';
import { AnchoredDir } from '../src/agent/volume-files/anchored-dir.ts';
import { resolveInside } from '../src/agent/volume-files/confine.ts';
import { openInside } from '../src/agent/volume-files/open-inside.ts';
import { PathRefused, VolumeFileError, type VolumeFileErrorKind } from '../src/agent/volume-files/volume-file-error.ts';
import { VolumeFiles } from '../src/agent/volume-files/volume-files.ts';
import { createVolumeFilesHandler } from '../src/agent/volume-files/volume-files-handler.ts';
import { VOLUME_FILES_PREFIX, volumeFilesPath } from '../src/protocol/volume-files.ts';
import { matchVolumeFilesPath } from '../src/agent/volume-files/volume-files-route.ts';
import type { VolumeListing } from '../src/agent/volume-files/volume-entry.ts';
import { TEMP_PREFIX } from '../src/agent/volume-files/write-file-atomic.ts';

const SECRET = 'OUTSIDE SECRET\n';
const DATA = randomBytes(200 * 1024 + 7);
const MAX_UPLOAD = 64 * 1024;

let base = '';
let outside = '';
let counter = 0;
const volumes = new Map<string, string>();
const files = new VolumeFiles({ resolveMountpoint: async (name) => volumes.get(name) ?? null, maxUploadBytes: MAX_UPLOAD });

let server: http2.Http2Server;
let client: http2.ClientHttp2Session;

before(async () => {
  base = await fsp.mkdtemp(path.join(os.tmpdir(), 'dockfleet-vf-'));
  outside = path.join(base, 'outside');
  await fsp.mkdir(path.join(outside, 'dir-target'), { recursive: true });
  await fsp.writeFile(path.join(outside, 'secret.txt'), SECRET);
  await fsp.writeFile(path.join(outside, 'dir-target', 'keep.txt'), 'keep\n');
  const handler = createVolumeFilesHandler(files, silentLogger());
  server = http2.createServer((req, res) => void handler(req, res));
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  client = http2.connect(`http://127.0.0.1:${(server.address() as AddressInfo).port}`);
  client.on('error', () => {});
});

after(async () => {
  client.close();
  await new Promise<void>((resolve) => server.close(() => resolve()));
  await fsp.rm(base, { recursive: true, force: true });
});

/** A fresh volume: files, a subdirectory, and links to outside and inside. */
async function makeVolume(): Promise<{ name: string; dir: string }> {
  const name = `vol${++counter}`;
  const dir = path.join(base, 'volumes', name, '_data');
  await fsp.mkdir(path.join(dir, 'sub', 'deeper'), { recursive: true });
  await fsp.writeFile(path.join(dir, 'hello.txt'), 'hello world\n');
  await fsp.writeFile(path.join(dir, 'data.bin'), DATA);
  await fsp.writeFile(path.join(dir, 'sub', 'nested.txt'), 'nested\n');
  await fsp.writeFile(path.join(dir, 'sub', 'deeper', 'x.txt'), 'x\n');
  await fsp.symlink('/etc', path.join(dir, 'etc-link'));
  await fsp.symlink(path.join(outside, 'secret.txt'), path.join(dir, 'secret-link'));
  await fsp.symlink('sub', path.join(dir, 'inner-link'));
  await fsp.symlink('hello.txt', path.join(dir, 'inner-file-link'));
  volumes.set(name, dir);
  return { name, dir };
}

async function isRefused(promise: Promise<unknown>, pattern?: RegExp): Promise<void> {
  await assert.rejects(promise, (err: unknown) => {
    assert.ok(err instanceof PathRefused, `expected PathRefused, got ${String(err)}`);
    if (pattern) assert.match(err.message, pattern);
    return true;
  });
}

async function failsWith(promise: Promise<unknown>, kind: VolumeFileErrorKind, pattern?: RegExp): Promise<void> {
  await assert.rejects(promise, (err: unknown) => {
    assert.ok(err instanceof VolumeFileError, `expected VolumeFileError, got ${String(err)}`);
    assert.equal(err.kind, kind, err.message);
    if (pattern) assert.match(err.message, pattern);
    return true;
  });
}

async function readAll(stream: AsyncIterable<Uint8Array>): Promise<Buffer> {
  const chunks: Buffer[] = [];
  for await (const c of stream) chunks.push(Buffer.from(c));
  return Buffer.concat(chunks);
}

/** Every name under `dir`, relative, sorted (links not followed). */
async function tree(dir: string): Promise<string[]> {
  const out: string[] = [];
  for (const e of await fsp.readdir(dir, { withFileTypes: true })) {
    out.push(e.name);
    if (e.isDirectory()) for (const n of await tree(path.join(dir, e.name))) out.push(`${e.name}/${n}`);
  }
  return out.sort();
}

async function noTempFiles(dir: string): Promise<void> {
  assert.deepEqual(
    (await tree(dir)).filter((n) => path.basename(n).startsWith(TEMP_PREFIX)),
    [],
  );
}

const delay = (ms: number): Promise<void> => new Promise((resolve) => setTimeout(resolve, ms));

// ---------------------------------------------------------------------------------------------
describe('resolveInside', () => {
  let dir = '';
  let real = '';
  before(async () => {
    ({ dir } = await makeVolume());
    real = await fsp.realpath(dir);
  });

  test('".." is refused', () => isRefused(resolveInside(dir, '..', { mustExist: false }), /escapes the volume/));
  test('"../x" is refused', () => isRefused(resolveInside(dir, '../x', { mustExist: false }), /escapes the volume/));
  test('"a/../../x" is refused', () => isRefused(resolveInside(dir, 'a/../../x', { mustExist: false }), /escapes the volume/));
  test('"sub/../hello.txt" is refused although it would stay inside', () => isRefused(resolveInside(dir, 'sub/../hello.txt', { mustExist: true })));
  test('"../x" is refused for creating too', () => isRefused(resolveInside(dir, '../x', { mustExist: false, forCreate: true })));
  test('"/etc/passwd" (absolute) is refused', () => isRefused(resolveInside(dir, '/etc/passwd', { mustExist: true }), /absolute/));
  test('a NUL byte is refused', () => isRefused(resolveInside(dir, 'a\0b', { mustExist: false }), /NUL/));

  test('"%2e%2e/x" is not decoded again: a plain name, absent', async () => {
    assert.equal(await resolveInside(dir, '%2e%2e/x', { mustExist: false }), path.join(real, '%2e%2e', 'x'));
    await failsWith(resolveInside(dir, '%2e%2e/x', { mustExist: true }), 'not_found');
  });
  test('"%252e%252e" is a plain name too', async () => {
    await failsWith(resolveInside(dir, '%252e%252e', { mustExist: true }), 'not_found');
  });
  test('backslashes are filename characters, not separators', async () => {
    await fsp.writeFile(path.join(dir, '..\\x'), 'b');
    assert.equal(await resolveInside(dir, '..\\x', { mustExist: true }), path.join(real, '..\\x'));
    await failsWith(resolveInside(dir, 'sub\\nested.txt', { mustExist: true }), 'not_found');
  });
  test('empty segments collapse and "." segments drop', async () => {
    assert.equal(await resolveInside(dir, '', { mustExist: true }), real);
    assert.equal(await resolveInside(dir, '.', { mustExist: true }), real);
    assert.equal(await resolveInside(dir, './/sub//./deeper/', { mustExist: true }), path.join(real, 'sub', 'deeper'));
  });

  test('a link to /etc: reading through it is refused', () => isRefused(resolveInside(dir, 'etc-link/passwd', { mustExist: true }), /"etc-link" is a symbolic link to outside/));
  test('a link to /etc: following it is refused', () => isRefused(resolveInside(dir, 'etc-link', { mustExist: true })));
  test('a link to /etc: creating through it is refused', () => isRefused(resolveInside(dir, 'etc-link/new', { mustExist: false, forCreate: true })));
  test('a link to /etc: replacing it is refused', () => isRefused(resolveInside(dir, 'etc-link', { mustExist: false, forCreate: true })));
  test('a link to /etc: the link itself can be addressed (noFollow)', async () => {
    assert.equal(await resolveInside(dir, 'etc-link', { mustExist: true, noFollow: true }), path.join(real, 'etc-link'));
  });
  test('a link to a file outside is refused', () => isRefused(resolveInside(dir, 'secret-link', { mustExist: true })));
  test('links that stay inside are followed', async () => {
    assert.equal(await resolveInside(dir, 'inner-link/nested.txt', { mustExist: true }), path.join(real, 'sub', 'nested.txt'));
    assert.equal(await resolveInside(dir, 'inner-file-link', { mustExist: true }), path.join(real, 'hello.txt'));
    assert.equal(await resolveInside(dir, 'inner-link/new.txt', { mustExist: false, forCreate: true }), path.join(real, 'sub', 'new.txt'));
  });
  test('a dangling link is neither followed nor created through', async () => {
    await fsp.symlink('/nonexistent-dockfleet/dir', path.join(dir, 'dangling'));
    await failsWith(resolveInside(dir, 'dangling', { mustExist: true }), 'not_found');
    await failsWith(resolveInside(dir, 'dangling/x', { mustExist: false, forCreate: true }), 'not_found');
    await isRefused(resolveInside(dir, 'dangling', { mustExist: false, forCreate: true }));
  });
  test('the root itself cannot be a create/remove target', async () => {
    await isRefused(resolveInside(dir, '', { mustExist: true, noFollow: true }), /volume root/);
    await isRefused(resolveInside(dir, '.', { mustExist: false, forCreate: true }), /volume root/);
  });
});

// ---------------------------------------------------------------------------------------------
describe('check-then-open races', () => {
  test('O_NOFOLLOW refuses a final component swapped for a link after the check', async () => {
    const { dir } = await makeVolume();
    const root = await fsp.realpath(dir);
    const checked = await resolveInside(root, 'hello.txt', { mustExist: true });
    await fsp.rm(path.join(dir, 'hello.txt'));
    await fsp.symlink(path.join(outside, 'secret.txt'), path.join(dir, 'hello.txt'));
    await assert.rejects(openInside(root, checked, constants.O_RDONLY), { code: 'ELOOP' });
  });

  test('a directory swapped for a link after the check is caught once opened', async () => {
    const { dir } = await makeVolume();
    const root = await fsp.realpath(dir);
    await fsp.writeFile(path.join(dir, 'sub', 'secret.txt'), 'inside\n');
    await fsp.mkdir(path.join(outside, 'fake', 'deeper'), { recursive: true });
    await fsp.writeFile(path.join(outside, 'fake', 'secret.txt'), SECRET);
    const checked = await resolveInside(root, 'sub/secret.txt', { mustExist: true });
    const checkedDir = await resolveInside(root, 'sub/deeper', { mustExist: true });
    const checkedFinal = await resolveInside(root, 'sub', { mustExist: true });
    await fsp.rename(path.join(dir, 'sub'), path.join(dir, 'sub-moved'));
    await fsp.symlink(path.join(outside, 'fake'), path.join(dir, 'sub'));
    // open(2) followed the swapped-in link on the way; where the descriptor landed gives it away.
    await isRefused(openInside(root, checked, constants.O_RDONLY), /escapes the volume/);
    await isRefused(AnchoredDir.open(root, checkedDir), /escapes the volume/);
    // The directory itself swapped: O_NOFOLLOW | O_DIRECTORY will not open a link at all.
    await assert.rejects(AnchoredDir.open(root, checkedFinal), (err: unknown) => ['ENOTDIR', 'ELOOP'].includes(String((err as { code?: unknown }).code)));
  });

  test('an anchored directory keeps working on the directory it opened, wherever its path now leads', async () => {
    const { dir } = await makeVolume();
    const root = await fsp.realpath(dir);
    const anchored = await AnchoredDir.open(root, path.join(root, 'sub'));
    try {
      await fsp.rename(path.join(dir, 'sub'), path.join(dir, 'sub-moved'));
      await fsp.symlink(path.join(outside, 'dir-target'), path.join(dir, 'sub'));
      await fsp.writeFile(anchored.entry('made.txt'), 'm');
      assert.ok(fs.existsSync(path.join(dir, 'sub-moved', 'made.txt')));
      assert.deepEqual(await fsp.readdir(path.join(outside, 'dir-target')), ['keep.txt']);
    } finally {
      await anchored.close();
    }
  });

  test('reads racing a directory ⇄ link swap never return outside bytes', async () => {
    const { name, dir } = await makeVolume();
    await fsp.mkdir(path.join(dir, 'swap'));
    await fsp.writeFile(path.join(dir, 'swap', 'secret.txt'), 'inside\n');
    let stop = false;
    const flipper = (async () => {
      while (!stop) {
        fs.renameSync(path.join(dir, 'swap'), path.join(dir, 'swap-real'));
        fs.symlinkSync(outside, path.join(dir, 'swap'));
        await new Promise((resolve) => setImmediate(resolve));
        fs.unlinkSync(path.join(dir, 'swap'));
        fs.renameSync(path.join(dir, 'swap-real'), path.join(dir, 'swap'));
        await new Promise((resolve) => setImmediate(resolve));
      }
    })();
    const outcomes = new Map<string, number>();
    const attempt = async (): Promise<string> => {
      try {
        return (await readAll((await files.openRead(name, 'swap/secret.txt')).stream)).toString();
      } catch (err) {
        if (err instanceof VolumeFileError) return err.kind;
        throw err;
      }
    };
    try {
      for (let round = 0; round < 60; round++) {
        for (const r of await Promise.all(Array.from({ length: 16 }, attempt))) outcomes.set(r, (outcomes.get(r) ?? 0) + 1);
      }
    } finally {
      stop = true;
      await flipper;
    }
    assert.equal(outcomes.get(SECRET), undefined, `outcomes: ${JSON.stringify([...outcomes])}`);
    assert.deepEqual(
      [...outcomes.keys()].filter((k) => !['inside\n', 'refused', 'not_found'].includes(k)),
      [],
    );
  });
});

// ---------------------------------------------------------------------------------------------
describe('VolumeFiles', () => {
  test('lists a directory: dirs first, then by name, links with their targets', async () => {
    const { name } = await makeVolume();
    const listing = await files.list(name, '');
    assert.equal(listing.path, '.');
    assert.equal(listing.truncated, false);
    assert.deepEqual(
      listing.entries.map((e) => [e.name, e.type]),
      [
        ['sub', 'dir'],
        ['data.bin', 'file'],
        ['etc-link', 'symlink'],
        ['hello.txt', 'file'],
        ['inner-file-link', 'symlink'],
        ['inner-link', 'symlink'],
        ['secret-link', 'symlink'],
      ],
    );
    const byName = new Map(listing.entries.map((e) => [e.name, e]));
    assert.equal(byName.get('etc-link')?.linkTarget, '/etc');
    assert.equal(byName.get('inner-link')?.linkTarget, 'sub');
    assert.equal(byName.get('hello.txt')?.size, 12);
    assert.match(byName.get('hello.txt')?.mode ?? '', /^[0-7]{4}$/);
    assert.match(byName.get('hello.txt')?.modifiedAt ?? '', /^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z$/);
    assert.equal(byName.get('hello.txt')?.linkTarget, undefined);
    assert.deepEqual(
      (await files.list(name, 'inner-link')).entries.map((e) => e.name),
      ['deeper', 'nested.txt'],
    );
    assert.equal((await files.list(name, 'inner-link')).path, 'inner-link');
  });

  test('a listing stops at maxListEntries and says so', async () => {
    const { name } = await makeVolume();
    const small = new VolumeFiles({ resolveMountpoint: async (n) => volumes.get(n) ?? null, maxListEntries: 3 });
    const listing = await small.list(name, '');
    assert.equal(listing.entries.length, 3);
    assert.equal(listing.truncated, true);
  });

  test('reads exact bytes; refuses directories and links that leave', async () => {
    const { name } = await makeVolume();
    const file = await files.openRead(name, 'data.bin');
    assert.equal(file.size, DATA.length);
    assert.equal(file.name, 'data.bin');
    assert.deepEqual(await readAll(file.stream), DATA);
    assert.equal((await readAll((await files.openRead(name, 'inner-file-link')).stream)).toString(), 'hello world\n');
    await failsWith(files.openRead(name, 'sub'), 'bad_request', /is a directory/);
    await isRefused(files.openRead(name, 'secret-link'));
    await isRefused(files.openRead(name, 'etc-link/passwd'));
  });

  test('a FIFO or device node planted in the volume is refused, not opened', async () => {
    const { name, dir } = await makeVolume();
    const { execFileSync } = await import('node:child_process');
    execFileSync('mkfifo', [path.join(dir, 'pipe')]);
    await failsWith(files.openRead(name, 'pipe'), 'bad_request', /not a regular file/);
    // A device node (containers may mknod by default): refused before it is ever opened.
    execFileSync('mknod', [path.join(dir, 'null-dev'), 'c', '1', '3']);
    await failsWith(files.openRead(name, 'null-dev'), 'bad_request', /not a regular file/);
  });

  test('writes a new file, keeps an existing one unless overwrite, leaves no temp files', async () => {
    const { name, dir } = await makeVolume();
    assert.deepEqual(await files.write(name, 'new.txt', Readable.from([Buffer.from('one')]), { overwrite: false }), { path: 'new.txt', size: 3, created: true });
    await failsWith(files.write(name, 'new.txt', Readable.from([Buffer.from('two')]), { overwrite: false }), 'conflict', /already exists/);
    assert.equal(await fsp.readFile(path.join(dir, 'new.txt'), 'utf8'), 'one');
    assert.deepEqual(await files.write(name, 'new.txt', Readable.from([Buffer.from('three')]), { overwrite: true }), { path: 'new.txt', size: 5, created: false });
    assert.equal(await fsp.readFile(path.join(dir, 'new.txt'), 'utf8'), 'three');
    await failsWith(files.write(name, 'sub', Readable.from([Buffer.from('x')]), { overwrite: true }), 'conflict', /is a directory/);
    await failsWith(files.write(name, 'missing/x.txt', Readable.from([Buffer.from('x')]), { overwrite: false }), 'not_found');
    await files.write(name, 'inner-link/via-link.txt', Readable.from([Buffer.from('v')]), { overwrite: false });
    assert.equal(await fsp.readFile(path.join(dir, 'sub', 'via-link.txt'), 'utf8'), 'v');
    await noTempFiles(dir);
  });

  test('an overwrite keeps the file owner and mode (minus set-id bits); a new file takes its directory owner', async () => {
    const { name, dir } = await makeVolume();
    await fsp.chown(path.join(dir, 'sub'), 1234, 2345);
    await files.write(name, 'sub/owned.txt', Readable.from([Buffer.from('x')]), { overwrite: false });
    const made = await fsp.stat(path.join(dir, 'sub', 'owned.txt'));
    assert.deepEqual([made.uid, made.gid, made.mode & 0o7777], [1234, 2345, 0o644]);
    await fsp.chown(path.join(dir, 'hello.txt'), 4321, 5432);
    await fsp.chmod(path.join(dir, 'hello.txt'), 0o4750);
    await files.write(name, 'hello.txt', Readable.from([Buffer.from('y')]), { overwrite: true });
    const kept = await fsp.stat(path.join(dir, 'hello.txt'));
    assert.deepEqual([kept.uid, kept.gid, kept.mode & 0o7777], [4321, 5432, 0o750]);
  });

  test('an upload over the limit leaves nothing behind', async () => {
    const { name, dir } = await makeVolume();
    const before = await tree(dir);
    const big = Readable.from(
      (function* () {
        for (let i = 0; i < 5; i++) yield Buffer.alloc(20 * 1024, i);
      })(),
    );
    await failsWith(files.write(name, 'big.bin', big, { overwrite: false }), 'too_large');
    await failsWith(files.write(name, 'big.bin', Readable.from([]), { overwrite: false, expectedBytes: MAX_UPLOAD + 1 }), 'too_large');
    assert.deepEqual(await tree(dir), before);
  });

  test('an upload that fails or ends short leaves nothing behind, and an overwrite keeps the old file', async () => {
    const { name, dir } = await makeVolume();
    const before = await tree(dir);
    const failing = Readable.from(
      (async function* () {
        yield Buffer.from('partial');
        throw new Error('connection lost');
      })(),
    );
    await assert.rejects(files.write(name, 'partial.txt', failing, { overwrite: false }), /connection lost/);
    await failsWith(files.write(name, 'short.txt', Readable.from([Buffer.from('abc')]), { overwrite: false, expectedBytes: 10 }), 'bad_request', /3 of 10/);
    await failsWith(files.write(name, 'hello.txt', Readable.from([Buffer.from('abc')]), { overwrite: true, expectedBytes: 10 }), 'bad_request');
    assert.deepEqual(await tree(dir), before);
    assert.equal(await fsp.readFile(path.join(dir, 'hello.txt'), 'utf8'), 'hello world\n');
  });

  test('mkdir, rename (no overwrite unless asked), remove (recursive only when asked)', async () => {
    const { name, dir } = await makeVolume();
    assert.deepEqual(await files.mkdir(name, 'made'), { path: 'made' });
    assert.ok(fs.statSync(path.join(dir, 'made')).isDirectory());
    await failsWith(files.mkdir(name, 'made'), 'conflict');
    await failsWith(files.mkdir(name, 'no/such/parent'), 'not_found');

    assert.deepEqual(await files.rename(name, 'hello.txt', 'made/hi.txt'), { from: 'hello.txt', to: 'made/hi.txt' });
    assert.equal(await fsp.readFile(path.join(dir, 'made', 'hi.txt'), 'utf8'), 'hello world\n');
    await failsWith(files.rename(name, 'data.bin', 'made/hi.txt'), 'conflict', /already exists/);
    await files.rename(name, 'data.bin', 'made/hi.txt', { overwrite: true });
    assert.deepEqual(await fsp.readFile(path.join(dir, 'made', 'hi.txt')), DATA);
    await failsWith(files.rename(name, 'sub', 'sub/deeper/sub'), 'bad_request');
    await failsWith(files.rename(name, 'nope', 'x'), 'not_found');

    await files.remove(name, 'made/hi.txt', { recursive: false });
    assert.equal(fs.existsSync(path.join(dir, 'made', 'hi.txt')), false);
    await failsWith(files.remove(name, 'sub', { recursive: false }), 'conflict', /not empty/);
    await files.remove(name, 'made', { recursive: false });
    await files.remove(name, 'sub', { recursive: true });
    assert.equal(fs.existsSync(path.join(dir, 'sub')), false);
    await failsWith(files.remove(name, 'sub', { recursive: true }), 'not_found');
  });

  test('removing the volume root is refused', async () => {
    const { name, dir } = await makeVolume();
    await isRefused(files.remove(name, '', { recursive: true }), /volume root/);
    await isRefused(files.remove(name, '.', { recursive: true }), /volume root/);
    await isRefused(files.remove(name, '/', { recursive: true }));
    assert.ok(fs.existsSync(path.join(dir, 'hello.txt')));
  });

  test('removing links removes only the links', async () => {
    const { name, dir } = await makeVolume();
    await files.remove(name, 'etc-link', { recursive: true });
    await files.remove(name, 'secret-link', { recursive: false });
    await files.remove(name, 'inner-link', { recursive: true });
    assert.ok(fs.existsSync('/etc/passwd'));
    assert.equal(await fsp.readFile(path.join(outside, 'secret.txt'), 'utf8'), SECRET);
    assert.ok(fs.existsSync(path.join(dir, 'sub', 'nested.txt')));
    assert.deepEqual(
      (await files.list(name, '')).entries.map((e) => e.name),
      ['sub', 'data.bin', 'hello.txt', 'inner-file-link'],
    );
  });

  test('a recursive remove does not follow links inside the tree', async () => {
    const { name, dir } = await makeVolume();
    await fsp.mkdir(path.join(dir, 'tree', 'a'), { recursive: true });
    await fsp.symlink(path.join(outside, 'dir-target'), path.join(dir, 'tree', 'a', 'out'));
    await fsp.symlink('/etc', path.join(dir, 'tree', 'etc'));
    await fsp.writeFile(path.join(dir, 'tree', 'a', 'f'), 'f');
    await files.remove(name, 'tree', { recursive: true });
    assert.equal(fs.existsSync(path.join(dir, 'tree')), false);
    assert.deepEqual(await fsp.readdir(path.join(outside, 'dir-target')), ['keep.txt']);
    assert.ok(fs.existsSync('/etc/passwd'));
  });

  test('links to outside: no write, mkdir, rename or remove through them', async () => {
    const { name } = await makeVolume();
    const probe = `dockfleet-probe-${randomBytes(4).toString('hex')}`;
    await isRefused(files.write(name, `etc-link/${probe}`, Readable.from([Buffer.from('x')]), { overwrite: false }));
    await isRefused(files.write(name, 'etc-link', Readable.from([Buffer.from('x')]), { overwrite: true }));
    await isRefused(files.write(name, 'secret-link', Readable.from([Buffer.from('x')]), { overwrite: true }));
    await isRefused(files.mkdir(name, `etc-link/${probe}`));
    await isRefused(files.rename(name, 'hello.txt', `etc-link/${probe}`));
    await isRefused(files.rename(name, 'hello.txt', 'etc-link', { overwrite: true }));
    await isRefused(files.rename(name, 'etc-link/hostname', 'stolen'));
    await isRefused(files.remove(name, 'etc-link/hostname', { recursive: false }));
    await isRefused(files.list(name, 'etc-link'));
    assert.equal(fs.existsSync(`/etc/${probe}`), false);
    assert.equal(await fsp.readFile(path.join(outside, 'secret.txt'), 'utf8'), SECRET);
  });

  test('renames out of or onto the root are refused', async () => {
    const { name } = await makeVolume();
    await isRefused(files.rename(name, 'hello.txt', '../x'), /escapes the volume/);
    await isRefused(files.rename(name, '..', 'x'));
    await isRefused(files.rename(name, '', 'x'), /volume root/);
    await isRefused(files.rename(name, 'hello.txt', '.', { overwrite: true }), /volume root/);
  });

  test('unknown volumes and bad volume names', async () => {
    await failsWith(files.list('no-such-volume', ''), 'not_found', /no such volume/);
    await failsWith(files.list('../etc', ''), 'bad_request');
    await failsWith(files.list('.hidden', ''), 'bad_request');
  });
});

// ---------------------------------------------------------------------------------------------
interface Reply {
  status: number;
  headers: http2.IncomingHttpHeaders;
  body: Buffer;
  rstCode: number | undefined;
}

function message(reply: Reply): string {
  const parsed = JSON.parse(reply.body.toString('utf8')) as { message?: unknown };
  return typeof parsed.message === 'string' ? parsed.message : '';
}

function json<T>(reply: Reply): T {
  return JSON.parse(reply.body.toString('utf8')) as T;
}

function call(method: string, urlPath: string, body?: Buffer | string, headers: Record<string, string | number> = {}): Promise<Reply> {
  return new Promise((resolve, reject) => {
    const stream = client.request({ ':method': method, ':path': urlPath, ...headers }, { endStream: body === undefined });
    const chunks: Buffer[] = [];
    let status = 0;
    let responseHeaders: http2.IncomingHttpHeaders = {};
    stream.on('response', (h) => {
      status = Number(h[':status']);
      responseHeaders = h;
    });
    stream.on('data', (c: Buffer) => chunks.push(c));
    stream.on('error', reject);
    stream.on('close', () => resolve({ status, headers: responseHeaders, body: Buffer.concat(chunks), rstCode: stream.rstCode }));
    if (body !== undefined) stream.end(body);
  });
}

const url = (volume: string, query: Record<string, string> = {}): string => {
  const qs = new URLSearchParams(query).toString();
  return volumeFilesPath(volume, qs === '' ? '' : `?${qs}`);
};
const rawUrl = (volume: string, rawQuery: string): string => `${VOLUME_FILES_PREFIX}/${volume}/files?${rawQuery}`;
const put = (volume: string, query: Record<string, string>, body: Buffer | string): Promise<Reply> => call('PUT', url(volume, query), body, { 'content-length': Buffer.byteLength(body) });
const post = (volume: string, query: Record<string, string>, op: unknown): Promise<Reply> => call('POST', url(volume, query), JSON.stringify(op));

describe('HTTP/2 endpoint', () => {
  describe('escapes, each refused', () => {
    let name = '';
    let dir = '';
    before(async () => {
      ({ name, dir } = await makeVolume());
      await fsp.mkdir(path.join(dir, '%2e%2e'));
      await fsp.writeFile(path.join(dir, '%2e%2e', 'x'), 'literal percent name\n');
    });

    const refusedRaw: Array<[string, string]> = [
      ['..', 'path=..'],
      ['../x', 'path=../x'],
      ['a/../../x', 'path=a/../../x'],
      ['/etc/passwd', 'path=/etc/passwd&download=1'],
      ['/etc/passwd, encoded', 'path=%2Fetc%2Fpasswd&download=1'],
      ['..%2Fx (decodes once to ../x)', 'path=..%2Fx'],
      ['%2e%2e/x (decodes once to ../x)', 'path=%2e%2e/x'],
      ['a%00b (NUL)', 'path=a%00b'],
      ['etc-link (a link to /etc)', 'path=etc-link'],
      ['etc-link/passwd', 'path=etc-link/passwd&download=1'],
      ['secret-link (a link to a file outside)', 'path=secret-link&download=1'],
    ];
    for (const [label, query] of refusedRaw) {
      test(`GET ${label} → 403`, async () => {
        const reply = await call('GET', rawUrl(name, query));
        assert.equal(reply.status, 403, reply.body.toString());
        assert.ok(message(reply).length > 0);
      });
    }

    test('the refusal says why', async () => {
      assert.match(message(await call('GET', rawUrl(name, 'path=../x'))), /path escapes the volume/);
      assert.match(message(await call('GET', rawUrl(name, 'path=etc-link/passwd&download=1'))), /path escapes the volume: "etc-link" is a symbolic link to outside it/);
      assert.match(message(await call('GET', rawUrl(name, 'path=/etc/passwd'))), /absolute/);
      assert.match(message(await call('GET', rawUrl(name, 'path=a%00b'))), /NUL/);
    });

    test('%252e%252e/x arrives as the name "%2e%2e/x": served as a plain file, never as ..', async () => {
      const reply = await call('GET', rawUrl(name, 'path=%252e%252e/x&download=1'));
      assert.equal(reply.status, 200);
      assert.equal(reply.body.toString(), 'literal percent name\n');
      const missing = await call('GET', rawUrl(name, 'path=%252e%252e/y'));
      assert.equal(missing.status, 404);
    });

    test('%252e%252e arrives as the directory name "%2e%2e"', async () => {
      const reply = await call('GET', rawUrl(name, 'path=%252e%252e'));
      assert.equal(reply.status, 200);
      assert.deepEqual(
        json<VolumeListing>(reply).entries.map((e) => e.name),
        ['x'],
      );
    });

    test('the listing shows the link to /etc as a link', async () => {
      const link = json<VolumeListing>(await call('GET', url(name))).entries.find((e) => e.name === 'etc-link');
      assert.equal(link?.type, 'symlink');
      assert.equal(link?.linkTarget, '/etc');
    });

    test('no upload, mkdir, rename or delete through the link to /etc', async () => {
      const probe = `dockfleet-probe-${randomBytes(4).toString('hex')}`;
      assert.equal((await put(name, { path: `etc-link/${probe}` }, 'x')).status, 403);
      assert.equal((await put(name, { path: 'etc-link', overwrite: '1' }, 'x')).status, 403);
      assert.equal((await post(name, { path: `etc-link/${probe}` }, { op: 'mkdir' })).status, 403);
      assert.equal((await post(name, { path: 'hello.txt' }, { op: 'rename', to: `etc-link/${probe}` })).status, 403);
      assert.equal((await post(name, { path: 'hello.txt' }, { op: 'rename', to: 'etc-link', overwrite: true })).status, 403);
      assert.equal((await post(name, { path: 'etc-link/hostname' }, { op: 'rename', to: 'stolen' })).status, 403);
      assert.equal((await call('DELETE', url(name, { path: 'etc-link/hostname' }))).status, 403);
      assert.equal(fs.existsSync(`/etc/${probe}`), false);
      assert.ok(fs.existsSync('/etc/hostname'));
    });

    test('rename to ../x is refused; so is a rename "to" that only decodes to ../x (JSON is not URL-decoded)', async () => {
      const escaping = await post(name, { path: 'hello.txt' }, { op: 'rename', to: '../x' });
      assert.equal(escaping.status, 403);
      assert.match(message(escaping), /escapes the volume/);
      const literal = await post(name, { path: 'hello.txt' }, { op: 'rename', to: '%2e%2e/hello.txt' });
      assert.equal(literal.status, 200);
      assert.ok(fs.existsSync(path.join(dir, '%2e%2e', 'hello.txt')));
    });

    test('deleting the volume root is refused, however it is written', async () => {
      for (const q of ['', 'path=', 'path=.', 'path=./', 'path=/', 'path=sub/..', 'path=.&recursive=1']) {
        const reply = await call('DELETE', rawUrl(name, q));
        assert.equal(reply.status, 403, `DELETE ?${q}: ${reply.body.toString()}`);
      }
      assert.ok(fs.existsSync(path.join(dir, 'data.bin')));
    });

    test('deleting the link to /etc removes only the link', async () => {
      const reply = await call('DELETE', url(name, { path: 'etc-link', recursive: '1' }));
      assert.equal(reply.status, 200);
      assert.equal(fs.existsSync(path.join(dir, 'etc-link')), false);
      assert.ok(fs.existsSync('/etc/passwd'));
      const secret = await call('DELETE', url(name, { path: 'secret-link' }));
      assert.equal(secret.status, 200);
      assert.equal(await fsp.readFile(path.join(outside, 'secret.txt'), 'utf8'), SECRET);
    });

    test('the route matches exactly one path shape', () => {
      assert.equal(matchVolumeFilesPath(`${VOLUME_FILES_PREFIX}/v1/files`), 'v1');
      assert.equal(matchVolumeFilesPath(`${VOLUME_FILES_PREFIX}/a/b/files`), null);
      assert.equal(matchVolumeFilesPath(`${VOLUME_FILES_PREFIX}//files`), null);
      assert.equal(matchVolumeFilesPath(`${VOLUME_FILES_PREFIX}/v1/files/x`), null);
      assert.equal(matchVolumeFilesPath('/docker/volumes/v1/files'), null);
    });

    test('volume names are checked', async () => {
      assert.equal((await call('GET', `${VOLUME_FILES_PREFIX}/..%2Fx/files`)).status, 400);
      assert.equal((await call('GET', `${VOLUME_FILES_PREFIX}/-x/files`)).status, 400);
      assert.equal((await call('GET', `${VOLUME_FILES_PREFIX}/nosuchvolume/files`)).status, 404);
      assert.equal((await call('GET', `${VOLUME_FILES_PREFIX}/${name}/other`)).status, 404);
    });
  });

  describe('normal operations', () => {
    test('list', async () => {
      const { name } = await makeVolume();
      const reply = await call('GET', url(name));
      assert.equal(reply.status, 200);
      assert.equal(reply.headers['content-type'], 'application/json');
      const listing = json<VolumeListing>(reply);
      assert.equal(listing.path, '.');
      assert.deepEqual(
        listing.entries.map((e) => e.name),
        ['sub', 'data.bin', 'etc-link', 'hello.txt', 'inner-file-link', 'inner-link', 'secret-link'],
      );
      assert.deepEqual(
        json<VolumeListing>(await call('GET', url(name, { path: 'sub' }))).entries.map((e) => e.name),
        ['deeper', 'nested.txt'],
      );
    });

    test('download: exact bytes, content-length, attachment with the real name', async () => {
      const { name, dir } = await makeVolume();
      const reply = await call('GET', url(name, { path: 'data.bin', download: '1' }));
      assert.equal(reply.status, 200);
      assert.equal(reply.headers['content-length'], String(DATA.length));
      assert.equal(reply.headers['content-type'], 'application/octet-stream');
      assert.match(String(reply.headers['content-disposition']), /^attachment; filename="data.bin"/);
      assert.deepEqual(reply.body, DATA);

      const odd = 'héllo "wörld"\n.txt';
      await fsp.writeFile(path.join(dir, odd), 'odd');
      const oddReply = await call('GET', url(name, { path: odd, download: '1' }));
      assert.equal(oddReply.status, 200);
      assert.equal(oddReply.body.toString(), 'odd');
      assert.equal(oddReply.headers['content-disposition'], `attachment; filename="h_llo _w_rld__.txt"; filename*=UTF-8''${encodeURIComponent(odd)}`);

      await fsp.writeFile(path.join(dir, 'empty'), '');
      const empty = await call('GET', url(name, { path: 'empty', download: '1' }));
      assert.deepEqual([empty.status, empty.headers['content-length'], empty.body.length], [200, '0', 0]);

      assert.equal((await call('GET', url(name, { path: 'sub', download: '1' }))).status, 400);
      assert.equal((await call('GET', url(name, { path: 'hello.txt' }))).status, 400);
      assert.equal((await call('GET', url(name, { path: 'nope', download: '1' }))).status, 404);
    });

    test('upload, the overwrite rule, and no temp files', async () => {
      const { name, dir } = await makeVolume();
      const created = await put(name, { path: 'up.txt' }, 'first');
      assert.equal(created.status, 201);
      assert.deepEqual(json<unknown>(created), { path: 'up.txt', size: 5, created: true });
      const again = await put(name, { path: 'up.txt' }, 'second');
      assert.equal(again.status, 409);
      assert.match(message(again), /already exists/);
      assert.equal(await fsp.readFile(path.join(dir, 'up.txt'), 'utf8'), 'first');
      const replaced = await put(name, { path: 'up.txt', overwrite: '1' }, 'third');
      assert.equal(replaced.status, 200);
      assert.equal(await fsp.readFile(path.join(dir, 'up.txt'), 'utf8'), 'third');
      const bigger = randomBytes(MAX_UPLOAD);
      assert.equal((await put(name, { path: 'sub/exact-limit.bin' }, bigger)).status, 201);
      assert.deepEqual(await fsp.readFile(path.join(dir, 'sub', 'exact-limit.bin')), bigger);
      assert.equal((await put(name, { path: 'nodir/x' }, 'x')).status, 404);
      assert.equal((await put(name, { path: 'sub', overwrite: '1' }, 'x')).status, 409);
      await noTempFiles(dir);
    });

    test('an upload over the limit is refused at once with 413 and leaves nothing', async () => {
      const { name, dir } = await makeVolume();
      const before = await tree(dir);
      const reply = await put(name, { path: 'big.bin' }, Buffer.alloc(MAX_UPLOAD + 1));
      assert.equal(reply.status, 413);
      assert.match(message(reply), /larger than the limit/);
      assert.deepEqual(await tree(dir), before);
    });

    test('an upload without content-length is refused with 411', async () => {
      const { name, dir } = await makeVolume();
      const reply = await call('PUT', url(name, { path: 'chunked.txt' }), 'abc');
      assert.equal(reply.status, 411);
      assert.equal(fs.existsSync(path.join(dir, 'chunked.txt')), false);
    });

    test('an upload the sender abandons half-way leaves nothing behind', async () => {
      const { name, dir } = await makeVolume();
      const stream = client.request({ ':method': 'PUT', ':path': url(name, { path: 'cut.bin' }), 'content-length': 50_000 });
      stream.on('error', () => {});
      stream.write(Buffer.alloc(10_000));
      const tempAppeared = async (): Promise<boolean> => (await fsp.readdir(dir)).some((n) => n.startsWith(TEMP_PREFIX));
      for (let i = 0; i < 200 && !(await tempAppeared()); i++) await delay(10);
      assert.ok(await tempAppeared(), 'the upload should have started');
      stream.close(http2.constants.NGHTTP2_CANCEL);
      for (let i = 0; i < 200 && (await tempAppeared()); i++) await delay(10);
      await noTempFiles(dir);
      assert.equal(fs.existsSync(path.join(dir, 'cut.bin')), false);
    });

    test('mkdir and rename', async () => {
      const { name, dir } = await makeVolume();
      const made = await post(name, { path: 'newdir' }, { op: 'mkdir' });
      assert.equal(made.status, 201);
      assert.deepEqual(json<unknown>(made), { path: 'newdir' });
      assert.equal((await post(name, { path: 'newdir' }, { op: 'mkdir' })).status, 409);
      assert.equal((await post(name, { path: 'a/b' }, { op: 'mkdir' })).status, 404);

      const moved = await post(name, { path: 'hello.txt' }, { op: 'rename', to: 'newdir/hello.txt' });
      assert.equal(moved.status, 200);
      assert.deepEqual(json<unknown>(moved), { from: 'hello.txt', to: 'newdir/hello.txt' });
      assert.equal(await fsp.readFile(path.join(dir, 'newdir', 'hello.txt'), 'utf8'), 'hello world\n');
      assert.equal((await post(name, { path: 'data.bin' }, { op: 'rename', to: 'newdir/hello.txt' })).status, 409);
      assert.equal((await post(name, { path: 'data.bin' }, { op: 'rename', to: 'newdir/hello.txt', overwrite: true })).status, 200);
      assert.deepEqual(await fsp.readFile(path.join(dir, 'newdir', 'hello.txt')), DATA);
    });

    test('delete: files, empty dirs, recursive only when asked', async () => {
      const { name, dir } = await makeVolume();
      assert.deepEqual(json<unknown>(await call('DELETE', url(name, { path: 'hello.txt' }))), { removed: 'hello.txt' });
      assert.equal(fs.existsSync(path.join(dir, 'hello.txt')), false);
      const notEmpty = await call('DELETE', url(name, { path: 'sub' }));
      assert.equal(notEmpty.status, 409);
      assert.match(message(notEmpty), /not empty/);
      assert.equal((await call('DELETE', url(name, { path: 'sub', recursive: '1' }))).status, 200);
      assert.equal(fs.existsSync(path.join(dir, 'sub')), false);
      assert.equal((await call('DELETE', url(name, { path: 'sub' }))).status, 404);
    });

    test('bad requests', async () => {
      const { name } = await makeVolume();
      assert.equal((await call('PATCH', url(name), '{}')).status, 405);
      assert.equal((await call('GET', rawUrl(name, 'path=a&path=../b'))).status, 400);
      assert.equal((await call('GET', rawUrl(name, 'pth=a'))).status, 400);
      assert.equal((await call('GET', rawUrl(name, 'download=yes'))).status, 400);
      assert.equal((await call('POST', url(name, { path: 'x' }), '{nope')).status, 400);
      assert.equal((await post(name, { path: 'x' }, { op: 'chmod' })).status, 400);
      assert.equal((await post(name, { path: 'x' }, { op: 'rename' })).status, 400);
      assert.equal((await post(name, { path: 'x' }, { op: 'mkdir', extra: 1 })).status, 400);
      assert.equal((await call('POST', url(name, { path: 'x' }), Buffer.alloc(70_000, 0x20))).status, 413);
    });
  });
});
