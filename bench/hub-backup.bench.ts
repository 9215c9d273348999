/**
 * Hub backup and restore with 1,000 nodes and 100,000 audit entries (seeded straight into the
 * store, chained as the hub chains them), beside the plain thing an operator would do in the same
 * run: copy the database file and `tar | gzip` the data directory. Measures time, archive size
 * (format 2: brotli inside age) and peak RSS, for backup and restore apart; restore includes every
 * check (hashes, integrity, schema, audit chain). Passphrase archives pay age's scrypt (work factor
 * 18: ~2 s and 256 MiB) once each way; the recipient rows show the rest. The event loop's worst
 * stall is measured during a passphrase backup made in-thread and made as the hub's schedule
 * makes it (on a worker thread).
 * Writes bench/results/hub-backup.json.
 */
import { execFileSync } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { copyFileSync, mkdtempSync, readFileSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { generateIdentity, identityToRecipient } from 'age-encryption';
import { createHubBackup } from '../src/hub/backup/hub-backup.ts';
import { createHubBackupOffThread } from '../src/hub/backup/hub-backup-off-thread.ts';
import { restoreHubBackup } from '../src/hub/backup/hub-restore.ts';
import { hubConfigFrom } from '../src/hub/config.ts';
import { runHub } from '../src/hub/run-hub.ts';
import { silentLogger } from '../src/lib/logger.ts';
import { SqliteStore } from '../src/store/sqlite/sqlite-store.ts';
import { ROOT } from './lib/dockfleet-procs.ts';
import { machineFacts } from './lib/machine.ts';

const NODES = Number(process.env.BENCH_NODES ?? 1000);
const AUDIT = Number(process.env.BENCH_AUDIT ?? 100_000);
const PASSPHRASE = 'bench passphrase, long enough';

async function timed<T>(fn: () => Promise<T> | T): Promise<{ ms: number; value: T }> {
  const t = process.hrtime.bigint();
  const value = await fn();
  return { ms: Number(process.hrtime.bigint() - t) / 1e6, value };
}

const work = mkdtempSync(join(tmpdir(), 'dockfleet-bench-backup-'));
try {
  const dataDir = join(work, 'hub');
  const running = await runHub(hubConfigFrom({ data: dataDir, listen: '127.0.0.1:0' }, {}), silentLogger());
  await running.close();

  const seed = await timed(async () => {
    const store = new SqliteStore(join(dataDir, 'dockfleet.db'));
    const now = Date.now();
    for (let i = 0; i < NODES; i++) {
      const id = `node_${i}`;
      await store.createNode(
        { id, name: `n${i}`, state: 'active', createdAt: now, approvedAt: now, revokedAt: null, lastSeen: now, facts: null },
        { keyId: `key_${i}`, nodeId: id, publicKey: randomBytes(65).toString('base64'), state: 'active', createdAt: now },
      );
    }
    for (let i = 0; i < AUDIT; i++) {
      await store.appendAudit({ at: now + i, user: `user${i % 20}`, node: `n${i % NODES}`, method: i % 3 ? 'GET' : 'POST', path: `/docker/nodes/n${i % NODES}/containers/json`, status: 200 });
    }
    await store.close();
  });
  const dbBytes = statSync(join(dataDir, 'dockfleet.db')).size;

  const identity = await generateIdentity();
  const recipient = await identityToRecipient(identity);
  const masterKey = readFileSync(`${dataDir}.master.key`);
  const rows: Record<string, unknown>[] = [];
  for (const [label, sealTo, openWith] of [
    ['passphrase', { kind: 'passphrase', passphrase: PASSPHRASE }, { kind: 'passphrase', passphrase: PASSPHRASE }],
    ['recipient', { kind: 'recipient', recipient }, { kind: 'identity', identity }],
  ] as const) {
    const out = join(work, `hub-${label}.age`);
    const rssBefore = process.memoryUsage().rss;
    let peak = rssBefore;
    const sampler = setInterval(() => (peak = Math.max(peak, process.memoryUsage().rss)), 20);
    const backup = await timed(() => createHubBackup({ dataDir, out, sealTo, masterKey }));
    const backupPeak = Math.max(peak, process.memoryUsage().rss);
    globalThis.gc?.();
    const rssBeforeRestore = process.memoryUsage().rss;
    peak = rssBeforeRestore;
    const target = join(work, `restored-${label}`);
    const restore = await timed(() => restoreHubBackup({ file: out, dataDir: target, openWith, masterKeyFile: join(work, `${label}.key`) }));
    clearInterval(sampler);
    const restorePeak = Math.max(peak, process.memoryUsage().rss);
    rows.push({
      encryptedTo: label,
      backupMs: Math.round(backup.ms),
      restoreMs: Math.round(restore.ms),
      archiveBytes: backup.value.size,
      auditRowsVerified: restore.value.audit.rows,
      peakRssBytes: Math.max(backupPeak, restorePeak),
      rssBeforeBytes: rssBefore,
      backupPeakRssBytes: backupPeak,
      restorePeakRssBytes: restorePeak,
      rssBeforeRestoreBytes: rssBeforeRestore,
    });
    rmSync(target, { recursive: true, force: true });
  }

  // The event loop during a passphrase backup: in this thread (as before) and on a worker (as the schedule runs it).
  const stalls: Record<string, unknown>[] = [];
  for (const [where, make] of [
    ['in-thread', createHubBackup],
    ['worker-thread', createHubBackupOffThread],
  ] as const) {
    let last = performance.now();
    let worst = 0;
    const ticker = setInterval(() => {
      const now = performance.now();
      worst = Math.max(worst, now - last - 10);
      last = now;
    }, 10);
    const made = await timed(() => make({ dataDir, out: join(work, `stall-${where}.age`), sealTo: { kind: 'passphrase', passphrase: PASSPHRASE }, masterKey }));
    clearInterval(ticker);
    stalls.push({ where, backupMs: Math.round(made.ms), worstEventLoopStallMs: Math.round(worst) });
  }

  // The baseline: copy the database file (consistent only with the hub stopped), then tar | gzip the directory.
  const copy = await timed(() => copyFileSync(join(dataDir, 'dockfleet.db'), join(work, 'copy.db')));
  const tgz = join(work, 'hub.tgz');
  const tar = await timed(() => execFileSync('sh', ['-c', `tar -C "${work}" -cf - hub | gzip > "${tgz}"`]));
  const result = {
    bench: 'hub-backup',
    when: new Date().toISOString(),
    machine: machineFacts(),
    seeded: { nodes: NODES, auditEntries: AUDIT, seedMs: Math.round(seed.ms), databaseBytes: dbBytes },
    dockfleet: rows,
    eventLoopDuringPassphraseBackup: stalls,
    baseline: {
      copyDatabaseMs: Math.round(copy.ms),
      tarGzipMs: Math.round(tar.ms),
      tarGzipBytes: statSync(tgz).size,
      note: 'plain copy and tar|gzip: not encrypted, not checked, not consistent while the hub writes',
    },
  };
  writeFileSync(join(ROOT, 'bench', 'results', 'hub-backup.json'), `${JSON.stringify(result, null, 2)}\n`);
  process.stdout.write(`${JSON.stringify({ seeded: result.seeded, dockfleet: rows, eventLoop: stalls, baseline: result.baseline }, null, 2)}\n`);
} finally {
  rmSync(work, { recursive: true, force: true });
}
