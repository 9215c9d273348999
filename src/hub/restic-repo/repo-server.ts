/**
 * restic's REST protocol (v2) for one node's repository, answered on the HTTP/2 streams of the
 * restic connection that reached the hub over that node's link (reverse-links.ts). The node and
 * repository come from the link and the agent's answer, never from a request; a request names
 * only a file inside that one repository (repo-path.ts).
 *
 * Uploads stream to a temp file (SHA-256 on the way), bounded per type (MAX_FILE_BYTES), fsynced,
 * then placed once: restic names files by their hash, so a body whose hash is not its name is
 * refused, and a second upload of a name that exists is accepted only as the same bytes. A full
 * disk answers 507 and leaves no partial file.
 */
import { createHash } from 'node:crypto';
import type { IncomingHttpHeaders, ServerHttp2Stream } from 'node:http2';
import { open, rm } from 'node:fs/promises';
import { cancelUnlessDone } from '../../lib/h2-channel.ts';
import type { Logger } from '../../lib/logger.ts';
import { MAX_FILE_BYTES, parseRepoPath, type FileType } from './repo-path.ts';
import type { RepoDir } from './repo-files.ts';

const V2 = 'application/vnd.x.restic.rest.v2';
const V1 = 'application/vnd.x.restic.rest.v1';
/** Upload chunks are gathered into writes of about this size. */
const WRITE_BATCH_BYTES = 1024 * 1024;

class Refusal extends Error {
  constructor(
    readonly status: number,
    message: string,
  ) {
    super(message);
  }
}

function answer(stream: ServerHttp2Stream, status: number, text = ''): void {
  if (stream.destroyed || stream.closed) return;
  if (!stream.headersSent) {
    const body = Buffer.from(text);
    stream.respond({ ':status': status, 'content-type': 'text/plain; charset=utf-8', 'content-length': body.length });
    // Node ends the answer to a HEAD itself.
    if (!stream.writableEnded) stream.end(body);
  }
  // A body the client is still sending is not wanted any more.
  if (!stream.readableEnded) stream.once('finish', () => cancelUnlessDone(stream));
}

function statusOf(err: unknown): { status: number; message: string } {
  if (err instanceof Refusal) return { status: err.status, message: err.message };
  const code = (err as NodeJS.ErrnoException).code;
  if (code === 'ENOSPC' || code === 'EDQUOT') return { status: 507, message: 'the hub has no room for this file' };
  return { status: 500, message: 'the hub could not store this file' };
}

export async function serveRepoRequest(repo: RepoDir, stream: ServerHttp2Stream, headers: IncomingHttpHeaders, log: Logger): Promise<void> {
  const method = headers[':method'] ?? '';
  const [path = '', query = ''] = (headers[':path'] ?? '').split('?');
  const target = parseRepoPath(path);
  try {
    if (target === null) return answer(stream, 404, 'no such file');
    if (target.kind === 'repo') {
      if (method !== 'POST' || new URLSearchParams(query).get('create') !== 'true') return answer(stream, 405, 'only POST /?create=true');
      await repo.create();
      return answer(stream, 200);
    }
    if (!(await repo.exists())) return answer(stream, 404, 'no such repository');
    if (target.kind === 'dir') {
      if (method !== 'GET') return answer(stream, 405, 'a folder is only listed');
      return await list(repo, target.type, stream, headers);
    }
    const type = target.kind === 'config' ? 'config' : target.type;
    const name = target.kind === 'config' ? 'config' : target.name;
    switch (method) {
      case 'HEAD':
      case 'GET':
        return await read(repo, type, name, stream, headers, method === 'HEAD');
      case 'POST':
        return await save(repo, type, name, stream, headers);
      case 'DELETE':
        return answer(stream, (await repo.remove(type, name)) ? 200 : 404);
      default:
        return answer(stream, 405, `${method} is not part of restic's protocol`);
    }
  } catch (err) {
    const { status, message } = statusOf(err);
    if (status >= 500) log.warn({ err, method, path, repo: repo.dir }, 'restic repository request failed');
    answer(stream, status, message);
  }
}

async function list(repo: RepoDir, type: FileType, stream: ServerHttp2Stream, headers: IncomingHttpHeaders): Promise<void> {
  const entries = await repo.list(type);
  if (entries === null) return answer(stream, 404, 'no such folder');
  const v2 = String(headers.accept ?? '').includes(V2);
  const body = Buffer.from(JSON.stringify(v2 ? entries : entries.map((e) => e.name)));
  if (stream.destroyed) return;
  stream.respond({ ':status': 200, 'content-type': v2 ? V2 : V1, 'content-length': body.length });
  stream.end(body);
}

/** `bytes=A-B` or `bytes=A-` (the forms restic sends) within `size`; null when unsatisfiable,
 * undefined when there is no range. */
function rangeOf(header: string | undefined, size: number): { start: number; end: number } | null | undefined {
  if (header === undefined) return undefined;
  const m = /^bytes=(\d+)-(\d*)$/.exec(header.trim());
  if (!m) return null;
  const start = Number(m[1]);
  const end = m[2] === '' ? size - 1 : Math.min(Number(m[2]), size - 1);
  return start < size && start <= end ? { start, end } : null;
}

async function read(repo: RepoDir, type: FileType | 'config', name: string, stream: ServerHttp2Stream, headers: IncomingHttpHeaders, headOnly: boolean): Promise<void> {
  const handle = await open(repo.pathOf(type, name), 'r').catch((err: NodeJS.ErrnoException) => {
    if (err.code === 'ENOENT') return null;
    throw err;
  });
  if (handle === null) return answer(stream, 404, 'no such file');
  let handedOver = false;
  try {
    const { size } = await handle.stat();
    const range = rangeOf(headers.range as string | undefined, size);
    if (range === null) {
      if (stream.destroyed) return;
      stream.respond({ ':status': 416, 'content-range': `bytes */${size}` }, { endStream: true });
      return;
    }
    const start = range?.start ?? 0;
    const length = range ? range.end - range.start + 1 : size;
    const head = {
      ':status': range ? 206 : 200,
      'content-type': 'application/octet-stream',
      'content-length': length,
      ...(range ? { 'content-range': `bytes ${range.start}-${range.end}/${size}` } : {}),
    };
    if (stream.destroyed) return;
    if (headOnly) return void stream.respond({ ...head, ':status': 200, 'content-length': size }, { endStream: true });
    // Node sends the file from the descriptor itself; it is closed when the stream is done.
    stream.respondWithFD(handle, head, { offset: start, length });
    handedOver = true;
    stream.once('close', () => void handle.close().catch(() => {}));
  } finally {
    if (!handedOver) await handle.close();
  }
}

async function save(repo: RepoDir, type: FileType | 'config', name: string, stream: ServerHttp2Stream, headers: IncomingHttpHeaders): Promise<void> {
  const limit = MAX_FILE_BYTES[type];
  const declared = Number(headers['content-length'] ?? 0);
  if (declared > limit) throw new Refusal(413, `a ${type} file may hold at most ${limit} bytes`);
  const temp = await repo.tempFile();
  let kept = false;
  try {
    const hash = createHash('sha256');
    let total = 0;
    let batch: Buffer[] = [];
    let batched = 0;
    const flush = async (): Promise<void> => {
      if (batched === 0) return;
      const buffers = batch;
      batch = [];
      batched = 0;
      await temp.handle.writev(buffers);
    };
    // Not destroyed when a refusal leaves the loop: the refusal is answered, then the stream reset.
    for await (const chunk of stream.iterator({ destroyOnReturn: false }) as AsyncIterable<Buffer>) {
      total += chunk.length;
      if (total > limit) throw new Refusal(413, `a ${type} file may hold at most ${limit} bytes`);
      hash.update(chunk);
      batch.push(chunk);
      batched += chunk.length;
      if (batched >= WRITE_BATCH_BYTES) await flush();
    }
    await flush();
    if (type !== 'config' && hash.digest('hex') !== name) throw new Refusal(400, 'the body does not hash to its name');
    await temp.handle.sync();
    await temp.handle.close();
    if (!(await repo.place(temp.path, type, name))) {
      if (!(await repo.same(temp.path, type, name))) throw new Refusal(403, `${type === 'config' ? 'config' : `${type}/${name}`} exists with other contents; files are written once`);
    } else {
      kept = true;
    }
    answer(stream, 200);
  } finally {
    await temp.handle.close().catch(() => {});
    if (!kept) await rm(temp.path, { force: true });
  }
}
