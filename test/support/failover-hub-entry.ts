/**
 * One hub replica as its own process, for failover tests (issue 17): `node --import tsx
 * failover-hub-entry.ts DIR HOST:PORT STORE_URL REPLICA_URL,…`. It hands agents the fixed replica
 * list given (until the cluster's members list is wired in), prints `ready URL CA_BASE64`, and on
 * SIGTERM closes, which drains its agents first, then prints `drained` and exits.
 */
import { hubConfigFrom } from '../../src/hub/config.ts';
import { runHub } from '../../src/hub/run-hub.ts';
import { createLogger } from '../../src/lib/logger.ts';

const [dataDir, listen, store, replicas] = process.argv.slice(2);
if (!dataDir || !listen || !store || replicas === undefined) throw new Error('usage: failover-hub-entry.ts DIR HOST:PORT STORE_URL URL,…');
const list = replicas.split(',').filter(Boolean);
const running = await runHub(hubConfigFrom({ data: dataDir, listen, store }), createLogger('hub'), list.length > 0 ? { agentReplicas: () => list } : {});
process.stdout.write(`ready ${running.url} ${Buffer.from(running.caPem).toString('base64')}\n`);
process.once('SIGTERM', () => {
  const started = Date.now();
  void running.close().then(() => {
    process.stdout.write(`drained in ${Date.now() - started} ms\n`);
    process.exit(0);
  });
});
