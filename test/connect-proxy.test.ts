/** Agents behind an HTTP CONNECT proxy: HTTPS_PROXY is honoured (enrollment and channel both
 * go through it), NO_PROXY bypasses it, and a proxy that refuses is a clear error. */
import assert from 'node:assert/strict';
import http from 'node:http';
import net from 'node:net';
import { join } from 'node:path';
import { after, before, test } from 'node:test';
import { proxyFor } from '../src/agent/hub-dialer.ts';
import { mintCode, nodeStatus, startTestHub, type TestHub } from './support/hub-fixture.ts';
import { spawnDockfleet } from './support/processes.ts';
import { NO_ENGINE } from './support/agent-fixture.ts';

let hub: TestHub;
let proxy: http.Server;
let proxyUrl: string;
const tunnels: string[] = [];

before(async () => {
  hub = await startTestHub();
  proxy = http.createServer((_req, res) => res.writeHead(405).end());
  proxy.on('connect', (req: http.IncomingMessage, client: net.Socket, head: Buffer) => {
    tunnels.push(req.url ?? '');
    if (req.url?.startsWith('blocked')) return void client.end('HTTP/1.1 403 Forbidden\r\n\r\n');
    const [host, port] = (req.url ?? '').split(':');
    const upstream = net.connect(Number(port), host, () => {
      client.write('HTTP/1.1 200 Connection Established\r\n\r\n');
      upstream.write(head);
      upstream.pipe(client);
      client.pipe(upstream);
    });
    upstream.on('error', () => client.destroy());
    client.on('error', () => upstream.destroy());
  });
  await new Promise<void>((r) => proxy.listen(0, '127.0.0.1', r));
  proxyUrl = `http://127.0.0.1:${(proxy.address() as net.AddressInfo).port}`;
});
after(async () => {
  proxy.closeAllConnections();
  proxy.close();
  await hub.stop();
});

test('NO_PROXY and HTTPS_PROXY are read as curl reads them', () => {
  const env = { HTTPS_PROXY: 'proxy.local:3128', NO_PROXY: 'localhost,.internal.example' };
  assert.equal(proxyFor('hub.example.com', env)?.href, 'http://proxy.local:3128/');
  assert.equal(proxyFor('localhost', env), null);
  assert.equal(proxyFor('a.internal.example', env), null);
  assert.equal(proxyFor('hub.example.com', { https_proxy: 'http://p:8080' })?.port, '8080');
  assert.equal(proxyFor('x', { HTTPS_PROXY: 'http://p:1', NO_PROXY: '*' }), null);
  assert.equal(proxyFor('x', {}), null);
});

test('an agent behind a CONNECT proxy enrolls and connects through it', async () => {
  const code = await mintCode(hub, 'proxied');
  const hubPort = new URL(hub.url).port;
  const agent = spawnDockfleet(['agent', '--hub', hub.url, '--code', code, '--state', join(hub.dataDir, 'agent-proxied'), '--docker', NO_ENGINE], { HTTPS_PROXY: proxyUrl, NO_PROXY: '' });
  try {
    await agent.waitForLine(/agent proxied connected/);
    assert.equal(await nodeStatus(hub, 'proxied'), 'online');
    assert.ok(tunnels.filter((t) => t === `127.0.0.1:${hubPort}`).length >= 2, `tunnels: ${tunnels.join(' ')}`);
  } finally {
    await agent.stop();
  }
});

test('a proxy that refuses the tunnel is reported clearly', async () => {
  const agent = spawnDockfleet(
    ['agent', '--hub', 'https://blocked.invalid:7443', '--code', `DFE1-${hub.caDigest}-${'0'.repeat(32)}`, '--state', join(hub.dataDir, 'agent-blocked'), '--docker', NO_ENGINE],
    { HTTPS_PROXY: proxyUrl },
  );
  const exit = await agent.exited;
  assert.equal(exit.code, 1);
  assert.match(agent.stderr(), /refused CONNECT to blocked\.invalid:7443: 403/);
});
