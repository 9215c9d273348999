/**
 * A tar archive of a few small regular files held in memory, for `PUT /containers/ID/archive`
 * (the engine unpacks it; missing parent directories it makes 0755, owned by root): regular
 * files at plain absolute paths, with their mode, owned by 0:0. Written by tar-stream.
 */
import { pack } from 'tar-stream';
import { DockfleetError } from '../../protocol/errors.ts';

export interface TarFile {
  /** Absolute path in the container. */
  path: string;
  content: Buffer;
  mode: number;
}

function entryName(path: string): string {
  if (!path.startsWith('/') || path.split('/').some((seg) => seg === '..' || seg === '.')) {
    throw new DockfleetError('bad_request', `a file in a container needs a plain absolute path, not ${JSON.stringify(path.slice(0, 120))}`);
  }
  const relative = path.replace(/^\/+/, '');
  if (relative === '' || relative.endsWith('/')) throw new DockfleetError('bad_request', `not a file path: ${JSON.stringify(path.slice(0, 120))}`);
  return relative;
}

export async function tarFiles(files: readonly TarFile[]): Promise<Buffer> {
  const names = files.map((file) => entryName(file.path));
  const archive = pack();
  const chunks: Buffer[] = [];
  archive.on('data', (chunk: unknown) => void chunks.push(chunk as Buffer));
  const ended = new Promise<void>((resolve, reject) => {
    archive.once('end', resolve);
    archive.once('error', reject);
  });
  for (const [i, file] of files.entries()) archive.entry({ name: names[i]!, mode: file.mode & 0o7777, uid: 0, gid: 0, mtime: new Date() }, file.content);
  archive.finalize();
  await ended;
  return Buffer.concat(chunks);
}
