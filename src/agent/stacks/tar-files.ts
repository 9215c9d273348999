/**
 * A POSIX ustar archive of a few small regular files held in memory, for
 * `PUT /containers/ID/archive` (the engine unpacks it; missing parent directories it makes
 * 0755, owned by root). Only what that needs: regular files, absolute paths up to 255 bytes,
 * mode, owner 0:0. No dependency for ~60 lines of a format fixed since 1988.
 */
import { DockfleetError } from '../../protocol/errors.ts';

export interface TarFile {
  /** Absolute path in the container. */
  path: string;
  content: Buffer;
  mode: number;
}

const BLOCK = 512;

function octal(value: number, width: number): string {
  return `${value.toString(8).padStart(width - 1, '0')}\0`;
}

/** ustar keeps a long path as prefix (≤155) + '/' + name (≤100). */
function splitPath(path: string): { prefix: string; name: string } {
  if (Buffer.byteLength(path) <= 100) return { prefix: '', name: path };
  for (let i = path.lastIndexOf('/'); i > 0; i = path.lastIndexOf('/', i - 1)) {
    const prefix = path.slice(0, i);
    const name = path.slice(i + 1);
    if (Buffer.byteLength(prefix) <= 155 && Buffer.byteLength(name) <= 100 && name !== '') return { prefix, name };
  }
  throw new DockfleetError('bad_request', `the path ${JSON.stringify(path.slice(0, 120))} is too long for a file in a container`);
}

function header(file: TarFile, relative: string): Buffer {
  const block = Buffer.alloc(BLOCK);
  const { prefix, name } = splitPath(relative);
  block.write(name, 0, 100, 'utf8');
  block.write(octal(file.mode & 0o7777, 8), 100, 'ascii');
  block.write(octal(0, 8), 108, 'ascii');
  block.write(octal(0, 8), 116, 'ascii');
  block.write(octal(file.content.length, 12), 124, 'ascii');
  block.write(octal(Math.floor(Date.now() / 1000), 12), 136, 'ascii');
  block.write('        ', 148, 'ascii');
  block.write('0', 156, 'ascii');
  block.write('ustar\0', 257, 'ascii');
  block.write('00', 263, 'ascii');
  block.write(prefix, 345, 155, 'utf8');
  let sum = 0;
  for (const byte of block) sum += byte;
  block.write(`${sum.toString(8).padStart(6, '0')}\0 `, 148, 'ascii');
  return block;
}

export function tarFiles(files: readonly TarFile[]): Buffer {
  const parts: Buffer[] = [];
  for (const file of files) {
    if (!file.path.startsWith('/') || file.path.split('/').some((seg) => seg === '..' || seg === '.')) {
      throw new DockfleetError('bad_request', `a file in a container needs a plain absolute path, not ${JSON.stringify(file.path.slice(0, 120))}`);
    }
    const relative = file.path.replace(/^\/+/, '');
    if (relative === '' || relative.endsWith('/')) throw new DockfleetError('bad_request', `not a file path: ${JSON.stringify(file.path.slice(0, 120))}`);
    parts.push(header(file, relative), file.content);
    const pad = (BLOCK - (file.content.length % BLOCK)) % BLOCK;
    if (pad) parts.push(Buffer.alloc(pad));
  }
  parts.push(Buffer.alloc(BLOCK * 2));
  return Buffer.concat(parts);
}
