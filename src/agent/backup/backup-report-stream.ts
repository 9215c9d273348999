/**
 * The agent's answer on BACKUP_REPORTS_PATH: every volume's latest scheduled backup and
 * verification (and the wrapped keys scheduled backups made under escrow custody) as one
 * NDJSON line now, then again on each change. It coalesces like the stack
 * status stream: while the hub reads slowly only the newest set waits, as a mark. The hub
 * opens it on every link, so what happened while it was away arrives when the link returns.
 */
import type { Http2ServerRequest, Http2ServerResponse } from 'node:http2';
import { BACKUP_REPORTS_PATH, type BackupReportsMessage } from '../../protocol/volume-backup.ts';
import type { TunnelHandler } from '../tunnel-handler.ts';
import type { BackupReports } from './backup-report.ts';
import { coalescedFeed } from '../coalesced-feed.ts';

export function createBackupReportsHandler(reports: BackupReports): (req: Http2ServerRequest, res: Http2ServerResponse) => void {
  return coalescedFeed(reports, (): BackupReportsMessage => ({ reports: reports.list(), escrows: reports.escrows() }));
}

/** The tunnel handler with GET BACKUP_REPORTS_PATH answered here, everything else passed on. */
export function withBackupReports(reports: BackupReports, handler: TunnelHandler): TunnelHandler {
  const answer = createBackupReportsHandler(reports);
  return (req, res) => {
    if (req.method === 'GET' && req.url.split('?')[0] === BACKUP_REPORTS_PATH) return answer(req, res);
    return handler(req, res);
  };
}
