/**
 * The far side of hub-backup-off-thread.ts: runs inside a worker thread, takes one backup job
 * from its parent over the thread's message port (the master key and passphrase travel there, in
 * memory, never through argv or an environment), runs createHubBackup and posts back the result
 * or the error's code and message. age's scrypt and the tar/brotli work block only this thread.
 */
import { parentPort } from 'node:worker_threads';
import { DockfleetError } from '../../protocol/errors.ts';
import type { SealTo } from './backup-archive.ts';
import { createHubBackup } from './hub-backup.ts';

export interface BackupJob {
  dataDir: string;
  out: string;
  sealTo: SealTo;
  masterKey: Uint8Array | null;
}

export type BackupReply = { ok: true; result: Awaited<ReturnType<typeof createHubBackup>> } | { ok: false; code: DockfleetError['code']; message: string };

const port = parentPort;
if (port === null) throw new Error('backup-worker.ts runs only as a worker thread');
port.once('message', (job: BackupJob) => {
  const masterKey = job.masterKey === null ? null : Buffer.from(job.masterKey.buffer, job.masterKey.byteOffset, job.masterKey.byteLength);
  createHubBackup({ dataDir: job.dataDir, out: job.out, sealTo: job.sealTo, masterKey })
    .then((result): BackupReply => ({ ok: true, result }))
    .catch(
      (err: unknown): BackupReply =>
        err instanceof DockfleetError ? { ok: false, code: err.code, message: err.message } : { ok: false, code: 'internal', message: err instanceof Error ? err.message : String(err) },
    )
    .then((reply) => {
      masterKey?.fill(0);
      port.postMessage(reply);
      port.close();
    });
});
