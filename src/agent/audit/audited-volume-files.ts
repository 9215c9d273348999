/**
 * The volume-file browser in the host's audit log: every write (PUT upload, POST mkdir/rename,
 * DELETE) is recorded once its answer is out — ok (2xx), refused (403: the local policy or a path
 * outside the volume) or failed — with the volume as the target, the hub's named user and the key
 * that signed the write when it was signed (noted by the handler once it verified). Reads
 * are not recorded. A refusal for want of a signature is recorded by the intent guard itself (its
 * answer carries `x-dockfleet-policy: refused`), so it is not recorded twice.
 */
import type { Http2ServerRequest, Http2ServerResponse } from 'node:http2';
import { POLICY_REFUSAL_HEADER } from '../../protocol/docker-tunnel.ts';
import { VOLUME_FILES_PREFIX } from '../../protocol/volume-files.ts';
import type { TunnelHandler } from '../tunnel-handler.ts';
import { auditOriginOf } from './audit-origin.ts';
import type { HostAuditLog } from './host-audit.ts';

const WRITES = new Set(['PUT', 'POST', 'DELETE']);
/** How much of an answer is kept as the entry's detail (answers here are small JSON). */
const DETAIL_BYTES = 512;
const AGENT_PREFIX = VOLUME_FILES_PREFIX.slice(0, VOLUME_FILES_PREFIX.lastIndexOf('/'));

export function auditVolumeFiles(audit: HostAuditLog, handler: TunnelHandler): TunnelHandler {
  return (req, res) => {
    if (WRITES.has(req.method)) watch(audit, req, res);
    return handler(req, res);
  };
}

function watch(audit: HostAuditLog, req: Http2ServerRequest, res: Http2ServerResponse): void {
  const url = req.url.startsWith(`${AGENT_PREFIX}/`) ? req.url.slice(AGENT_PREFIX.length) : req.url;
  const pathname = url.split('?')[0] ?? url;
  const target = decodeURIComponent(pathname.split('/')[2] ?? '') || '-';
  let detail = '';
  // The answer's first bytes: the error message, or what was made, moved or removed.
  const end = res.end.bind(res) as (...args: unknown[]) => Http2ServerResponse;
  (res as unknown as { end: (...args: unknown[]) => Http2ServerResponse }).end = (...args: unknown[]) => {
    const first = args[0];
    if (typeof first === 'string' || Buffer.isBuffer(first)) detail = Buffer.from(first).subarray(0, DETAIL_BYTES).toString('utf8');
    return end(...args);
  };
  let recorded = false;
  const record = (): void => {
    if (recorded) return;
    recorded = true;
    if (res.getHeader(POLICY_REFUSAL_HEADER) === 'refused') return;
    const status = res.headersSent ? res.statusCode : 0;
    const result = status >= 200 && status < 300 ? 'ok' : status === 403 ? 'refused' : 'failed';
    audit.append({
      op: `${req.method} ${url}`,
      target,
      result,
      ...(status ? { status } : {}),
      reason: reasonOf(detail, status) ?? (status ? undefined : 'the stream ended before an answer'),
      ...auditOriginOf(req),
    });
  };
  res.once('finish', record);
  res.once('close', record);
}

/** `{"message": …}` for an error; the compact answer for a success. */
function reasonOf(detail: string, status: number): string | undefined {
  if (detail === '') return undefined;
  try {
    const parsed = JSON.parse(detail) as { message?: unknown };
    if (status >= 400 && typeof parsed.message === 'string') return parsed.message;
    return JSON.stringify(parsed).slice(0, 300);
  } catch {
    return detail.slice(0, 300);
  }
}
