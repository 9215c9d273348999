/**
 * The encrypted envelope of a hub backup: age (the `age-encryption` library), to a passphrase
 * (scrypt) or to an age recipient (X25519, `age1…`). Both directions stream: the plaintext tar
 * goes through age's STREAM chunks (64 KiB) with backpressure, so memory stays flat for a big
 * database. The output goes to FILE.tmp (0600), is fsynced, renamed to FILE and the directory
 * fsynced; on any failure (a full disk) FILE.tmp is removed and FILE was never touched.
 */
import { Decrypter, Encrypter } from 'age-encryption';
import { createReadStream, createWriteStream } from 'node:fs';
import { open, rename, unlink } from 'node:fs/promises';
import { basename, dirname, join } from 'node:path';
import { Readable } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import type { ReadableStream as WebReadableStream } from 'node:stream/web';
import { DockfleetError } from '../../protocol/errors.ts';

/** What an archive is encrypted to. */
export type SealTo = { kind: 'passphrase'; passphrase: string } | { kind: 'recipient'; recipient: string };
/** What opens an archive. */
export type OpenWith = { kind: 'passphrase'; passphrase: string } | { kind: 'identity'; identity: string };

const AGE_MAGIC = Buffer.from('age-encryption.org/v1\n');

/** The plaintext to seal: any async iterable of bytes (a tar-stream pack), destroyed on failure. */
export interface Plaintext extends AsyncIterable<unknown> {
  destroy(err?: Error): void;
}

/** A web stream that reads PLAIN only as age asks for more (backpressure end to end). */
function pulledFrom(plain: Plaintext): ReadableStream<Uint8Array> {
  const it = plain[Symbol.asyncIterator]();
  return new ReadableStream<Uint8Array>(
    {
      async pull(controller) {
        const next = await it.next();
        if (next.done) controller.close();
        else controller.enqueue(next.value as Uint8Array);
      },
      async cancel() {
        await it.return?.();
      },
    },
    { highWaterMark: 1 },
  );
}

export function encrypterFor(to: SealTo): Encrypter {
  const enc = new Encrypter();
  if (to.kind === 'passphrase') {
    if (to.passphrase.length < 8) throw new DockfleetError('bad_request', 'the backup passphrase must be at least 8 characters');
    enc.setPassphrase(to.passphrase);
  } else {
    try {
      enc.addRecipient(to.recipient.trim());
    } catch {
      throw new DockfleetError('bad_request', 'the --recipient is not an age recipient (age1…)');
    }
  }
  return enc;
}

/**
 * Encrypts PLAIN into FILE atomically: FILE.tmp, fsync, rename, fsync the directory. Returns the
 * archive's size in bytes.
 */
export async function writeEncrypted(plain: Plaintext, to: SealTo, file: string): Promise<number> {
  const encrypter = encrypterFor(to);
  const temp = join(dirname(file), `.${basename(file)}.${process.pid}.tmp`);
  let created = false;
  try {
    const out = createWriteStream(temp, { flags: 'wx', mode: 0o600, highWaterMark: 256 * 1024 });
    out.once('open', () => (created = true));
    const sealed = await encrypter.encrypt(pulledFrom(plain));
    await pipeline(Readable.fromWeb(sealed as unknown as WebReadableStream<Uint8Array>), out);
    // The stream has closed its descriptor; fsync through a new one (Linux flushes the file's pages).
    const fh = await open(temp, 'r+');
    try {
      await fh.sync();
    } finally {
      await fh.close();
    }
    await rename(temp, file);
    await syncDir(dirname(file));
    return out.bytesWritten;
  } catch (err) {
    plain.destroy();
    if (created || (err as NodeJS.ErrnoException).code !== 'EEXIST') await unlink(temp).catch(() => {});
    throw writeError(err, file);
  }
}

/**
 * Opens FILE for decryption: checks that it is an age file, then processes its header with the
 * passphrase or identity. Resolves with the plaintext stream; damage further in surfaces as an
 * error from that stream (age authenticates every chunk and the final one).
 */
export async function openEncrypted(file: string, opener: OpenWith): Promise<Readable> {
  let head: Buffer;
  try {
    const fh = await open(file, 'r');
    try {
      head = Buffer.alloc(AGE_MAGIC.length);
      const { bytesRead } = await fh.read(head, 0, head.length, 0);
      head = head.subarray(0, bytesRead);
    } finally {
      await fh.close();
    }
  } catch (err) {
    throw new DockfleetError('not_found', `cannot read ${file}: ${(err as NodeJS.ErrnoException).code ?? (err as Error).message}`);
  }
  if (!head.equals(AGE_MAGIC)) throw new DockfleetError('backup_damaged', `${file} is not a dockfleet backup: it is not an age-encrypted file`);

  const decrypter = new Decrypter();
  if (opener.kind === 'passphrase') decrypter.addPassphrase(opener.passphrase);
  else {
    try {
      decrypter.addIdentity(opener.identity.trim());
    } catch {
      throw new DockfleetError('bad_request', 'the identity file does not hold an age identity (AGE-SECRET-KEY-1…)');
    }
  }
  const source = Readable.toWeb(createReadStream(file, { highWaterMark: 256 * 1024 })) as unknown as ReadableStream<Uint8Array>;
  let plain;
  try {
    plain = await decrypter.decrypt(source);
  } catch (err) {
    throw headerError(err, file, opener);
  }
  return Readable.fromWeb(plain as unknown as WebReadableStream<Uint8Array>);
}

function headerError(err: unknown, file: string, opener: OpenWith): DockfleetError {
  const message = (err as Error).message ?? String(err);
  if (/no identity matched/.test(message)) {
    return new DockfleetError(
      'backup_key_wrong',
      opener.kind === 'passphrase'
        ? `the passphrase does not open ${file} (a wrong passphrase, an archive made for an age recipient, or a damaged header)`
        : `the identity does not open ${file} (it was made for another recipient or a passphrase, or its header is damaged)`,
    );
  }
  if (/work factor is too high/.test(message)) return new DockfleetError('backup_damaged', `${file} asks for an scrypt work factor beyond what this dockfleet accepts`);
  return new DockfleetError('backup_damaged', `${file} is damaged: its age header does not parse (${message})`);
}

/** An error thrown while the decrypted stream was read: damage or truncation past the header. */
export function bodyError(err: unknown, file: string): DockfleetError {
  if (err instanceof DockfleetError) return err;
  const message = (err as Error).message ?? String(err);
  return new DockfleetError('backup_damaged', `${file} is damaged or truncated: the encrypted data does not check out (${message})`);
}

function writeError(err: unknown, file: string): DockfleetError {
  if (err instanceof DockfleetError) return err;
  const code = (err as NodeJS.ErrnoException).code;
  if (code === 'ENOSPC' || code === 'EDQUOT') {
    return new DockfleetError('insufficient_storage', `no space left writing ${file}: nothing was written (free space, or choose another --out)`);
  }
  if (code === 'EEXIST') return new DockfleetError('conflict', `another backup is writing ${file} now`);
  if (code === 'ENOENT' || code === 'EACCES' || code === 'EROFS' || code === 'EPERM') {
    return new DockfleetError('bad_request', `cannot write ${file} (${code})`);
  }
  return new DockfleetError('internal', `writing ${file} failed: ${(err as Error).message ?? String(err)}`);
}

export async function syncDir(dir: string): Promise<void> {
  const fh = await open(dir, 'r');
  try {
    await fh.sync();
  } finally {
    await fh.close();
  }
}
