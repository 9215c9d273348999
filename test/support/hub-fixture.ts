/** A real hub (real TLS, real SQLite, real port) in this process, on a temp data dir. */
import { mkdtemp, readFile, rm } from 'node:fs/promises';
import https from 'node:https';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { defaultMasterKeyFile } from '../../src/hub/backup/master-key.ts';
import { hubConfigFrom } from '../../src/hub/config.ts';
import { runHub, type RunHubOptions, type RunningHub } from '../../src/hub/run-hub.ts';
import { silentLogger, type Logger } from '../../src/lib/logger.ts';
import { existsSync, rmSync } from 'node:fs';

export interface TestHub extends RunningHub {
  dataDir: string;
  token: string;
  api(method: string, path: string, body?: unknown, token?: string): Promise<{ status: number; json: any }>;
  /** Closes the hub and removes its data dir (unless `keepData`). */
  stop(opts?: { keepData?: boolean }): Promise<void>;
}

/**
 * Hub data dirs started here, and those this fixture made. At exit: a DIR this fixture made is
 * removed if a test kept it (a hub restarted with `stop({ keepData })` on the same DIR is not the
 * fixture's to remove when it stops); and a DIR that is gone loses the master key the hub made
 * beside it (DIR.master.key) too.
 */
const startedDirs = new Set<string>();
const madeDirs = new Set<string>();
process.once('exit', () => {
  for (const dir of madeDirs) rmSync(dir, { recursive: true, force: true });
  for (const dir of startedDirs) if (!existsSync(dir)) rmSync(defaultMasterKeyFile(dir), { force: true });
});

export async function startTestHub(
  opts: { dataDir?: string; port?: number; log?: Logger; edgeListen?: string; run?: RunHubOptions; store?: string; cluster?: { servers: string; replicaId: string } } = {},
): Promise<TestHub> {
  const dataDir = opts.dataDir ?? (await mkdtemp(join(tmpdir(), 'dockfleet-hub-')));
  if (opts.dataDir === undefined) madeDirs.add(dataDir);
  startedDirs.add(dataDir);
  const running = await runHub(
    hubConfigFrom({
      data: dataDir,
      listen: `127.0.0.1:${opts.port ?? 0}`,
      'edge-listen': opts.edgeListen,
      store: opts.store,
      ...(opts.cluster ? { bus: opts.cluster.servers, 'replica-id': opts.cluster.replicaId, 'peer-listen': '127.0.0.1:0' } : {}),
    }),
    opts.log ?? silentLogger(),
    opts.run ?? {},
  );
  const token = (await readFile(join(dataDir, 'admin.token'), 'utf8')).trim();
  const agent = new https.Agent({ ca: running.caPem, keepAlive: true });
  const api: TestHub['api'] = (method, path, body, useToken = token) =>
    new Promise((resolve, reject) => {
      const payload = body === undefined ? undefined : Buffer.from(typeof body === 'string' ? body : JSON.stringify(body));
      const req = https.request(
        new URL(path, running.url),
        {
          method,
          agent,
          headers: { ...(useToken ? { authorization: `Bearer ${useToken}` } : {}), ...(payload ? { 'content-type': 'application/json' } : {}) },
        },
        (res) => {
          const chunks: Buffer[] = [];
          res.on('data', (c: Buffer) => chunks.push(c));
          res.on('end', () => {
            const text = Buffer.concat(chunks).toString('utf8');
            let json: unknown = null;
            try {
              json = JSON.parse(text);
            } catch {
              json = text;
            }
            resolve({ status: res.statusCode ?? 0, json });
          });
        },
      );
      req.on('error', reject);
      req.end(payload);
    });
  return {
    ...running,
    dataDir,
    token,
    api,
    async stop(stopOpts = {}) {
      agent.destroy();
      await running.close();
      if (!stopOpts.keepData && !opts.dataDir) {
        await rm(dataDir, { recursive: true, force: true });
        await rm(defaultMasterKeyFile(dataDir), { force: true }); // the master key lives beside DIR, not in it
      }
    },
  };
}

/** Mints a single-use enrollment code for NAME through the REST API. */
export async function mintCode(hub: TestHub, name: string, ttlSeconds?: number): Promise<string> {
  const res = await hub.api('POST', '/api/v1/enrollments', { name, ...(ttlSeconds ? { ttlSeconds } : {}) });
  if (res.status !== 201) throw new Error(`enrollment failed: ${JSON.stringify(res.json)}`);
  return res.json.code as string;
}

/** Polls until `check` returns a truthy value or the deadline passes. */
export async function waitFor<T>(check: () => Promise<T> | T, timeoutMs: number, what: string, everyMs = 25): Promise<Exclude<T, null | undefined | false>> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const value = await check();
    if (value) return value as Exclude<T, null | undefined | false>;
    if (Date.now() > deadline) throw new Error(`timed out after ${timeoutMs} ms waiting for ${what}`);
    await new Promise((r) => setTimeout(r, everyMs));
  }
}

export async function nodeStatus(hub: TestHub, name: string): Promise<string | undefined> {
  const res = await hub.api('GET', '/api/v1/nodes');
  return (res.json as Array<{ name: string; status: string }>).find((n) => n.name === name)?.status;
}

/** Removes a temp dir a test or bench used as a hub's DIR, and the master key the hub made beside it (DIR.master.key). */
export async function removeHubData(dir: string): Promise<void> {
  await rm(dir, { recursive: true, force: true });
  await rm(defaultMasterKeyFile(dir), { force: true });
}
