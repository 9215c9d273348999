/**
 * createHubBackup on a worker thread, for the hub's schedule: age's passphrase scrypt (~2 s of
 * pure JS, 256 MiB) and the tar/brotli/hash work would otherwise hold the hub's event loop and
 * every request behind it. The job (with the master key and passphrase) goes to the worker over
 * its message port, in memory: nothing in argv or an environment another user could read. The
 * worker loads the TypeScript sources through tsx's loader itself (hooks registered by
 * bin/dockfleet.js do not reach worker threads on Node 20).
 */
import { Worker } from 'node:worker_threads';
import { DockfleetError } from '../../protocol/errors.ts';
import type { BackupJob, BackupReply } from './backup-worker.ts';
import type { HubBackupOptions, HubBackupResult } from './hub-backup.ts';

const WORKER_URL = new URL('./backup-worker.ts', import.meta.url).href;
const TSX_API_URL = import.meta.resolve('tsx/esm/api');
/** A CommonJS eval script: register tsx's loader in this thread, then load the worker module. */
const BOOT = `import(${JSON.stringify(TSX_API_URL)}).then((tsx) => { tsx.register(); return import(${JSON.stringify(WORKER_URL)}); })`;

export function createHubBackupOffThread(opts: HubBackupOptions): Promise<HubBackupResult> {
  return new Promise((resolve, reject) => {
    const worker = new Worker(BOOT, { eval: true, stdout: false, stderr: false });
    let reply: BackupReply | null = null;
    worker.once('message', (message: BackupReply) => (reply = message));
    worker.once('error', (err) => reject(new DockfleetError('internal', `the backup worker failed: ${err.message}`)));
    worker.once('exit', (code) => {
      if (reply === null) reject(new DockfleetError('internal', `the backup worker ended (exit code ${code}) without a result`));
      else if (reply.ok) resolve(reply.result);
      else reject(new DockfleetError(reply.code, reply.message));
    });
    const job: BackupJob = { dataDir: opts.dataDir, out: opts.out, sealTo: opts.sealTo, masterKey: opts.masterKey === null ? null : new Uint8Array(opts.masterKey) };
    worker.postMessage(job);
  });
}
