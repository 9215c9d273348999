/** One user holds at most 64 Docker calls and streams at once on a hub (the default cap): the
 * next is refused with too_many_streams in Docker's error format, a stream that ends (or whose
 * client leaves) frees its place, and other users are not affected. */
import assert from 'node:assert/strict';
import https from 'node:https';
import type { ClientRequest, IncomingMessage } from 'node:http';
import { after, before, test } from 'node:test';
import { startEngines, stopEngines, type TestEngine } from './support/engines.ts';
import { mintCode, startTestHub, waitFor, type TestHub } from './support/hub-fixture.ts';
import { startTestAgent, type TestAgent } from './support/agent-fixture.ts';

const CAP = 64;
let engines: TestEngine[];
let hub: TestHub;
let agent: TestAgent;
let viewerToken: string;
const open: ClientRequest[] = [];

before(async () => {
  engines = await startEngines(1, { prefix: 'cap' });
  hub = await startTestHub();
  agent = await startTestAgent({ hubUrl: hub.url, code: await mintCode(hub, 'cap-0'), docker: engines[0]!.dockerHost });
  await agent.waitConnected();
  viewerToken = (await hub.api('POST', '/api/v1/users', { name: 'vera', role: 'viewer' })).json.token;
});

after(async () => {
  for (const req of open) req.destroy();
  await agent?.stop();
  await hub?.stop();
  await stopEngines(engines ?? []);
});

/** Starts `docker events` through the hub; resolves once its answer's head arrived. */
function events(token: string): Promise<{ req: ClientRequest; res: IncomingMessage; body: () => Promise<string> }> {
  return new Promise((resolve, reject) => {
    const req = https.request(new URL('/docker/nodes/cap-0/v1.41/events', hub.url), { ca: hub.caPem, agent: false, headers: { authorization: `Bearer ${token}` } }, (res) => {
      open.push(req);
      const chunks: Buffer[] = [];
      const ended = new Promise<string>((r) => res.on('end', () => r(Buffer.concat(chunks).toString())));
      res.on('data', (c: Buffer) => chunks.push(c));
      resolve({ req, res, body: () => ended });
    });
    req.on('error', reject);
    req.end();
  });
}

test('the 65th concurrent stream of one user is refused with too_many_streams; other users go on', async () => {
  const held = await Promise.all(Array.from({ length: CAP }, () => events(hub.token)));
  assert.deepEqual([...new Set(held.map((h) => h.res.statusCode))], [200]);
  const refused = await events(hub.token);
  assert.equal(refused.res.statusCode, 429);
  assert.equal(refused.res.headers['x-dockfleet-error'], 'too_many_streams');
  const message = JSON.parse(await refused.body()).message as string;
  assert.match(message, /64/, 'Docker’s error format, naming the cap');
  // Another user is not affected.
  const other = await events(viewerToken);
  assert.equal(other.res.statusCode, 200);
  other.req.destroy();
  // A client that leaves frees its place.
  held[0]!.req.destroy();
  const again = await waitFor(
    async () => {
      const next = await events(hub.token);
      if (next.res.statusCode === 200) return next;
      await next.body();
      return null;
    },
    5_000,
    'a freed place',
    100,
  );
  assert.equal(again.res.statusCode, 200);
  for (const h of held) h.req.destroy();
  again.req.destroy();
  // Every place is free again once the streams are gone.
  await waitFor(
    async () => {
      const batch = await Promise.all(Array.from({ length: CAP }, () => events(hub.token)));
      const all = batch.every((b) => b.res.statusCode === 200);
      for (const b of batch) b.req.destroy();
      return all;
    },
    10_000,
    'all places free',
    200,
  );
});

test('clients that leave before their answer (even while the hub is still checking them) free their places', async () => {
  const leaving = Array.from(
    { length: 200 },
    (_, i) =>
      new Promise<void>((resolve) => {
        const req = https.request(new URL('/docker/nodes/cap-0/v1.41/events', hub.url), { ca: hub.caPem, agent: false, headers: { authorization: `Bearer ${hub.token}` } });
        req.on('error', () => {});
        req.on('close', () => resolve());
        req.on('socket', (s) => s.once('secureConnect', () => setTimeout(() => req.destroy(), i % 7)));
        req.end();
      }),
  );
  await Promise.all(leaving);
  await waitFor(
    async () => {
      const batch = await Promise.all(Array.from({ length: CAP }, () => events(hub.token)));
      const all = batch.every((b) => b.res.statusCode === 200);
      for (const b of batch) b.req.destroy();
      return all;
    },
    10_000,
    'every place free after the leavers',
    500,
  );
});
