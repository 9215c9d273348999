/**
 * Unpacks a verified release package (gzipped tar) into a fresh directory, refusing anything that
 * could write outside it: absolute names, `..`, links of any kind, devices. Regular files and
 * directories only; a leading `package/` (npm pack's layout) is dropped. Bounded in entries and bytes.
 */
import { mkdir, writeFile } from 'node:fs/promises';
import { dirname, join, posix } from 'node:path';
import { Readable } from 'node:stream';
import { createGunzip } from 'node:zlib';
import tarStream from 'tar-stream';

const MAX_ENTRIES = 20_000;
const MAX_UNPACKED_BYTES = 512 * 1024 * 1024;

/** A safe relative path for a tar entry name, or an error message. */
export function safeEntryPath(name: string): string | { refused: string } {
  let rel = name.replace(/^\.\//, '');
  if (rel.startsWith('package/')) rel = rel.slice('package/'.length);
  if (rel === '' || rel === 'package' || rel === 'package/') return '';
  if (rel.includes('\\') || rel.includes('\0')) return { refused: `entry ${JSON.stringify(name)} has a backslash or NUL` };
  if (posix.isAbsolute(rel)) return { refused: `entry ${JSON.stringify(name)} is an absolute path` };
  const normal = posix.normalize(rel);
  if (normal.split('/').includes('..') || normal.startsWith('/')) return { refused: `entry ${JSON.stringify(name)} climbs out of the release` };
  return normal.replace(/\/$/, '');
}

/** Extracts `pkg` into `dest` (which must not exist yet). Throws with the first refusal. */
export async function extractRelease(pkg: Buffer, dest: string): Promise<void> {
  await mkdir(dest, { recursive: false, mode: 0o755 });
  const extract = tarStream.extract();
  let entries = 0;
  let bytes = 0;
  const done = new Promise<void>((resolve, reject) => {
    extract.on('entry', (header, stream, next) => {
      // A refusal destroys the extractor, and with it this entry's stream: its error is the refusal, reported once below.
      stream.on('error', () => {});
      const fail = (message: string): void => {
        stream.resume();
        extract.destroy(new Error(message));
      };
      if (++entries > MAX_ENTRIES) return fail(`the release holds more than ${MAX_ENTRIES} entries`);
      const rel = safeEntryPath(header.name);
      if (typeof rel !== 'string') return fail(rel.refused);
      if (header.type === 'directory') {
        stream.resume();
        if (rel === '') return next();
        mkdir(join(dest, rel), { recursive: true, mode: 0o755 }).then(
          () => next(),
          (err: Error) => extract.destroy(err),
        );
        return;
      }
      if (header.type !== 'file') return fail(`entry ${JSON.stringify(header.name)} is a ${header.type ?? 'special entry'}; releases hold only files and directories`);
      if (rel === '') return fail('a file entry has an empty name');
      const chunks: Buffer[] = [];
      stream.on('data', (data: unknown) => {
        const c = data as Buffer;
        bytes += c.length;
        if (bytes > MAX_UNPACKED_BYTES) extract.destroy(new Error('the release unpacks to more than 512 MiB'));
        else chunks.push(c);
      });
      stream.on('end', () => {
        const target = join(dest, rel);
        const mode = (header.mode ?? 0o644) & 0o755;
        mkdir(dirname(target), { recursive: true, mode: 0o755 })
          .then(() => writeFile(target, Buffer.concat(chunks), { mode, flag: 'wx' }))
          .then(
            () => next(),
            (err: Error) => extract.destroy(err),
          );
      });
    });
    extract.on('finish', resolve);
    extract.on('error', reject);
  });
  const gunzip = createGunzip();
  gunzip.on('error', (err) => extract.destroy(new Error(`the release is not a gzipped tar: ${err.message}`)));
  extract.on('error', () => gunzip.destroy());
  Readable.from([pkg]).pipe(gunzip).pipe(extract);
  await done;
}
