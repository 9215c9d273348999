/**
 * Hub replicas for tests (issue 17): a private PostgreSQL and a private nats-server, then N
 * in-process hubs on them. The first starts alone and makes the CA, the master key and the admin
 * token; the others start on copies of its DIR (and DIR.master.key beside it), as an operator
 * would copy them, so every replica shares the CA and the key. Short heartbeats and sweeps keep
 * the tests quick. `close()` stops the hubs, then the servers, and removes the copies.
 */
import { cp, mkdtemp } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { defaultMasterKeyFile } from '../../src/hub/backup/master-key.ts';
import type { Logger } from '../../src/lib/logger.ts';
import type { RunHubOptions } from '../../src/hub/run-hub.ts';
import { removeHubData, startTestHub, type TestHub } from './hub-fixture.ts';
import { startNats, type TestNats } from './nats.ts';
import { startPostgres, type PostgresServer } from './postgres.ts';

export const REPLICA_TUNING = { heartbeatMs: 250, expireMs: 1_500, sweepMs: 250, sweepGraceMs: 1_000 };

export interface Replicas {
  hubs: TestHub[];
  nats: TestNats;
  pg: PostgresServer;
  storeUrl: string;
  close(): Promise<void>;
}

/** `run` is added to each replica's options (after the short cluster tuning); `log` gives each replica its logger. */
export async function startReplicas(count: number, opts: { run?: RunHubOptions; log?: (replicaId: string) => Logger } = {}): Promise<Replicas> {
  const pg = await startPostgres();
  const nats = await startNats();
  const storeUrl = await pg.freshDatabase();
  const hubs: TestHub[] = [];
  const copies: string[] = [];
  const start = (replicaId: string, dataDir?: string): Promise<TestHub> =>
    startTestHub({
      store: storeUrl,
      cluster: { servers: nats.url, replicaId },
      run: { clusterTuning: REPLICA_TUNING, ...opts.run },
      ...(dataDir ? { dataDir } : {}),
      ...(opts.log ? { log: opts.log(replicaId) } : {}),
    });
  try {
    const first = await start('replica-a');
    hubs.push(first);
    for (let i = 1; i < count; i++) {
      const dir = join(await mkdtemp(join(tmpdir(), 'dockfleet-replica-')), 'data');
      await cp(first.dataDir, dir, { recursive: true });
      await cp(defaultMasterKeyFile(first.dataDir), defaultMasterKeyFile(dir));
      copies.push(dir);
      hubs.push(await start(`replica-${String.fromCharCode(97 + i)}`, dir));
    }
  } catch (err) {
    for (const hub of hubs.reverse()) await hub.stop().catch(() => {});
    await nats.close();
    await pg.stop();
    throw err;
  }
  return {
    hubs,
    nats,
    pg,
    storeUrl,
    async close() {
      for (const hub of [...hubs].reverse()) await hub.stop().catch(() => {});
      for (const dir of copies) await removeHubData(join(dir, '..'));
      await nats.close();
      await pg.stop();
    },
  };
}
