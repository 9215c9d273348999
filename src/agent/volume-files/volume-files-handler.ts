/**
 * The agent's HTTP/2 endpoint for volume files, `/_dockfleet/v1/volumes/NAME/files?path=…`:
 *
 *   GET                 list the directory at `path` (JSON VolumeListing)
 *   GET  download=1     the file at `path`, as an attachment with its exact content-length
 *   PUT  [overwrite=1]  store the request body at `path` (content-length required)
 *   POST {op:"mkdir"} | {op:"rename", to, overwrite?}
 *   DELETE [recursive=1]
 *
 * Answers are JSON; errors are `{"message": …}` with 400, 403 (path refused, and why), 404, 405,
 * 409, 411, 413, 507 or 500. A request body the agent stops reading (refused or too large) is
 * cancelled (RST_STREAM CANCEL) once the answer is out, so the sender does not stall on flow
 * control.
 *
 * On a host that requires signed intent, a write (every call but GET; every call under "all")
 * runs only with a valid intent in digest mode over `volume-files <METHOD> <path and query>`
 * (volumeFilesOp) and the exact body, read whole first (at most MAX_SIGNED_VOLUME_BODY).
 */
import { constants as h2, type Http2ServerRequest, type Http2ServerResponse } from 'node:http2';
import { pipeline } from 'node:stream/promises';
import { DockfleetError } from '../../protocol/errors.ts';
import { parseJsonLine } from '../../lib/ndjson.ts';
import { readBounded } from '../../lib/read-bounded.ts';
import type { Logger } from '../../lib/logger.ts';
import { attachmentDisposition } from './content-disposition.ts';
import { VolumeFileError } from './volume-file-error.ts';
import { MAX_VOLUME_NAME, VOLUME_NAME, type VolumeFiles } from './volume-files.ts';
import { MAX_OP_BODY, parseVolumeFilesQuery, summariseIssues, volumeFilesOp, type VolumeFilesQuery } from './volume-files-request.ts';
import { matchVolumeFilesPath } from './volume-files-route.ts';
import { Readable } from 'node:stream';
import { bodyMatches } from '../intent/intent-verifier.ts';
import { noteSigner } from '../audit/audit-origin.ts';
import { callHints, intentHeaders, intentRefusalText, volumeFilesOp as signedVolumeOp, type IntentGuard } from '../intent/intent-guard.ts';

/** A signed volume-file body is read whole and digested before anything is written. */
export const MAX_SIGNED_VOLUME_BODY = 1024 * 1024;

export type VolumeFilesHandler = (req: Http2ServerRequest, res: Http2ServerResponse) => Promise<void>;

const ALLOW = 'GET, PUT, POST, DELETE';

interface Call {
  files: VolumeFiles;
  log: Logger;
  req: Http2ServerRequest;
  res: Http2ServerResponse;
  volume: string;
  query: VolumeFilesQuery;
  /** The body already read (and checked against its signature), when it was. */
  body: Buffer | null;
}

export function createVolumeFilesHandler(files: VolumeFiles, log: Logger, guard: IntentGuard | null = null): VolumeFilesHandler {
  return async (req, res) => {
    const at = { method: req.method, url: req.url };
    try {
      let body: Buffer | null = null;
      if (guard?.requires('volumeFiles', req.method)) {
        const checked = await checkSigned(guard, req);
        if (typeof checked === 'string') {
          const reason = checked;
          guard.refused({ op: `${req.method} ${req.url.split('?')[0]}`, target: req.url.split('?')[0] ?? '', reason, hints: callHints(req) });
          return sendJson(req, res, 403, { message: intentRefusalText(guard.node, reason) }, { 'x-dockfleet-policy': 'refused' });
        }
        body = checked;
      }
      await serve(files, log, req, res, body);
    } catch (err) {
      answerError(req, res, err, log, at);
    }
  };
}

/** The body, read and checked against the intent; a reason when it is refused. */
async function checkSigned(guard: IntentGuard, req: Http2ServerRequest): Promise<Buffer | string> {
  const { intent, sealed } = intentHeaders(req);
  if (sealed) return 'volume files take signed bodies whole (digest mode), not sealed';
  const checked = guard.check(intent, { op: signedVolumeOp(req.method, req.url), bodyMode: 'digest' });
  if (!checked.ok) return checked.reason;
  const body = req.stream.endAfterHeaders ? Buffer.alloc(0) : await readBounded(req as AsyncIterable<Buffer>, MAX_SIGNED_VOLUME_BODY);
  if (body === null) return `a signed volume-file body may be at most ${MAX_SIGNED_VOLUME_BODY} bytes`;
  if (!bodyMatches(checked.claims, body)) return 'the body is not the one that was signed';
  noteSigner(req, checked.claims);
  return body;
}

async function serve(files: VolumeFiles, log: Logger, req: Http2ServerRequest, res: Http2ServerResponse, body: Buffer | null = null): Promise<void> {
  const q = req.url.indexOf('?');
  const pathname = q === -1 ? req.url : req.url.slice(0, q);
  const volume = matchVolumeFilesPath(pathname);
  if (volume === null) throw new VolumeFileError('not_found', `no such agent endpoint ${pathname}`);
  if (volume.length > MAX_VOLUME_NAME || !VOLUME_NAME.test(volume)) throw new VolumeFileError('bad_request', `invalid volume name ${JSON.stringify(volume)}`);
  const query = parseVolumeFilesQuery(q === -1 ? '' : req.url.slice(q + 1));
  const call: Call = { files, log, req, res, volume, query, body };
  switch (req.method) {
    case 'GET':
      return query.download ? download(call) : sendJson(req, res, 200, await files.list(volume, query.path));
    case 'PUT':
      return upload(call);
    case 'POST':
      return operate(call);
    case 'DELETE': {
      const removed = await files.remove(volume, query.path, { recursive: query.recursive });
      log.info({ volume, path: removed.path, recursive: query.recursive }, 'volume file removed');
      return sendJson(req, res, 200, { removed: removed.path });
    }
    default:
      return sendJson(req, res, 405, { message: `method ${req.method} is not allowed here; use ${ALLOW}` }, { allow: ALLOW });
  }
}

async function download({ files, req, res, volume, query }: Call): Promise<void> {
  const file = await files.openRead(volume, query.path);
  res.writeHead(200, {
    'content-type': 'application/octet-stream',
    'content-length': file.size,
    'content-disposition': attachmentDisposition(file.name),
    'x-content-type-options': 'nosniff',
    'cache-control': 'no-store',
  });
  await pipeline(file.stream, res);
  cancelUnreadBody(req, res);
}

async function upload({ files, log, req, res, volume, query, body }: Call): Promise<void> {
  // Required: an HTTP/2 stream reset by the sender looks like a normal end of the body to the
  // compat API, so only the declared length tells a cut-off upload from a complete one.
  const declared = req.headers['content-length'];
  if (declared === undefined) throw new VolumeFileError('length_required', 'an upload must declare its content-length');
  if (!/^\d{1,15}$/.test(declared)) throw new VolumeFileError('bad_request', 'invalid content-length');
  const written = await files.write(volume, query.path, body !== null ? Readable.from([body]) : req, { overwrite: query.overwrite, expectedBytes: Number(declared) });
  log.info({ volume, path: written.path, size: written.size, created: written.created }, 'volume file uploaded');
  sendJson(req, res, written.created ? 201 : 200, written);
}

async function operate({ files, log, req, res, volume, query, body }: Call): Promise<void> {
  const raw = body !== null ? (body.length > MAX_OP_BODY ? null : body) : await readBounded(req as AsyncIterable<Buffer>, MAX_OP_BODY);
  if (raw === null) throw new VolumeFileError('too_large', `request body is over ${MAX_OP_BODY} bytes`);
  const json = parseJsonLine(raw.toString('utf8'));
  if (!json.ok) throw new VolumeFileError('bad_request', `request body is not JSON: ${json.error}`);
  const op = volumeFilesOp.safeParse(json.value);
  if (!op.success) throw new VolumeFileError('bad_request', `bad operation: ${summariseIssues(op.error)}`);
  if (op.data.op === 'mkdir') {
    const made = await files.mkdir(volume, query.path);
    log.info({ volume, path: made.path }, 'volume directory made');
    return sendJson(req, res, 201, made);
  }
  const moved = await files.rename(volume, query.path, op.data.to, { overwrite: op.data.overwrite ?? query.overwrite });
  log.info({ volume, from: moved.from, to: moved.to }, 'volume file renamed');
  sendJson(req, res, 200, moved);
}

function sendJson(req: Http2ServerRequest, res: Http2ServerResponse, status: number, body: unknown, extra: Record<string, string> = {}): void {
  const payload = JSON.stringify(body);
  res.writeHead(status, { 'content-type': 'application/json', 'content-length': Buffer.byteLength(payload), ...extra });
  res.end(payload, () => cancelUnreadBody(req, res));
}

/** After a complete answer: a request body still coming is not wanted (refusal, 413, …). */
function cancelUnreadBody(req: Http2ServerRequest, res: Http2ServerResponse): void {
  const stream = res.stream;
  if (stream.destroyed || stream.closed || stream.endAfterHeaders || req.readableEnded) return;
  stream.close(h2.NGHTTP2_CANCEL);
}

function answerError(req: Http2ServerRequest, res: Http2ServerResponse, err: unknown, log: Logger, at: { method: string; url: string }): void {
  if (res.stream.destroyed || res.stream.closed) return void log.debug({ err, ...at }, 'volume file request ended by the hub');
  if (res.headersSent) {
    // Mid-download: reset the stream so the other end sees a cut, not a short file.
    log.warn({ err, ...at }, 'volume file download failed part-way');
    return void res.stream.close(h2.NGHTTP2_INTERNAL_ERROR);
  }
  if (err instanceof VolumeFileError) {
    if (err.kind === 'refused') log.warn({ ...at, reason: err.message }, 'volume file access refused');
    return sendJson(req, res, err.status, { message: err.message });
  }
  if (err instanceof DockfleetError) return sendJson(req, res, err.status, { message: err.message });
  log.error({ err, ...at }, 'volume file operation failed');
  sendJson(req, res, 500, { message: 'volume file operation failed on the agent' });
}
