/**
 * Hub replicas as real processes for benches (issue 17): `dockfleet hub` with --store postgres://…
 * and --bus nats://…, each on its own fixed port (so a killed replica comes back where its agents
 * look for it) and its own peer port. The first starts alone and makes the CA, the master key and
 * the admin token; the others start on copies of its DIR and DIR.master.key, as an operator copies
 * them (and as test/support/replicas.ts does in-process). Children are killed by pid (lib/proc).
 * The store URL carries a password: it is passed on the command line only, never printed.
 */
import { cp, mkdtemp, readFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { defaultMasterKeyFile } from '../../src/hub/backup/master-key.ts';
import { BIN, childEnv, nodeFlags, ROOT } from './dockfleet-procs.ts';
import { freePort, startChild, type Child } from './proc.ts';

export interface ReplicaProc {
  id: string;
  port: number;
  dataDir: string;
  /** Null while stopped. */
  child: Child | null;
  url: string;
  /** When it printed `hub ready` last (epoch ms). */
  readyAt: number;
  /** Its last log lines (stdout), for a bench that fails to say what the replica was doing. */
  lastLines: string[];
}

export interface ReplicaSet {
  replicas: ReplicaProc[];
  caPem: string;
  caFile: string;
  token: string;
  tokenFile: string;
  /** Starts replica i again on its port and DIR (after kill or stop). */
  start(i: number): Promise<void>;
  /** SIGKILL of replica i (a crash: no drain). */
  kill(i: number): Promise<void>;
  stopAll(): Promise<void>;
  /** Every DIR this set made (the caller removes them). */
  dirs: string[];
}

/** `hubArgs`: more `dockfleet hub` flags for every replica (say, a higher per-address link cap). */
export async function startReplicaSet(count: number, storeUrl: string, busUrl: string, hubArgs: string[] = []): Promise<ReplicaSet> {
  const replicas: ReplicaProc[] = [];
  const dirs: string[] = [];
  const launch = async (r: ReplicaProc): Promise<void> => {
    const label = `replica-${r.id}`;
    const args = [
      ...nodeFlags(label),
      BIN,
      'hub',
      '--data',
      r.dataDir,
      '--listen',
      `127.0.0.1:${r.port}`,
      '--store',
      storeUrl,
      '--bus',
      busUrl,
      '--replica-id',
      r.id,
      '--peer-listen',
      '127.0.0.1:0',
      ...hubArgs,
    ];
    const child = startChild(label, process.execPath, args, { cwd: ROOT, env: childEnv() });
    r.child = child;
    child.onLine((l) => {
      r.lastLines.push(l);
      if (r.lastLines.length > 30) r.lastLines.shift();
    });
    const { line, at } = await child.waitForLine(/^hub ready /, 60_000);
    r.url = line.slice('hub ready '.length).trim();
    r.readyAt = at;
  };
  const make = async (i: number, from: string | null): Promise<ReplicaProc> => {
    const parent = await mkdtemp(join(tmpdir(), `dockfleet-bench-replica-${i}-`));
    dirs.push(parent);
    const dataDir = join(parent, 'data');
    if (from) {
      await cp(from, dataDir, { recursive: true });
      await cp(defaultMasterKeyFile(from), defaultMasterKeyFile(dataDir));
    }
    const r: ReplicaProc = { id: `replica-${String.fromCharCode(97 + i)}`, port: await freePort(), dataDir, child: null, url: '', readyAt: 0, lastLines: [] };
    replicas.push(r);
    await launch(r);
    return r;
  };
  const stopAll = async (): Promise<void> => {
    await Promise.all(replicas.map((r) => r.child?.stop(10_000)));
  };
  try {
    const first = await make(0, null);
    for (let i = 1; i < count; i++) await make(i, first.dataDir);
  } catch (err) {
    await stopAll();
    throw err;
  }
  const caFile = join(replicas[0]!.dataDir, 'pki', 'ca.pem');
  const tokenFile = join(replicas[0]!.dataDir, 'admin.token');
  return {
    replicas,
    caPem: await readFile(caFile, 'utf8'),
    caFile,
    token: (await readFile(tokenFile, 'utf8')).trim(),
    tokenFile,
    dirs,
    async start(i) {
      await launch(replicas[i]!);
    },
    async kill(i) {
      const r = replicas[i]!;
      r.child?.kill('SIGKILL');
      await r.child?.exited;
      r.child = null;
    },
    stopAll,
  };
}
