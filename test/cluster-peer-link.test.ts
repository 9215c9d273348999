/**
 * Peer links between hub replicas (issue 17): a real agent beside a private engine holds its
 * link to replica A; replica B reaches it only through A's peer port (HTTP/2 over mutual TLS
 * with replica certificates from one CA). Calls, a 64 MiB upload and its download go through
 * byte for byte; a stale epoch, an unknown node and a certificate that is not a replica's are
 * refused; a reader that stops reading holds the sender back instead of filling the holder's memory.
 */
import assert from 'node:assert/strict';
import { createHash, randomBytes } from 'node:crypto';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import type http2 from 'node:http2';
import { tmpdir } from 'node:os';
import { Readable } from 'node:stream';
import { join } from 'node:path';
import { after, before, describe, test } from 'node:test';
import { PeerSessions } from '../src/hub/cluster/peer-sessions.ts';
import { startPeerServer, type PeerServer } from '../src/hub/cluster/peer-server.ts';
import { RemoteLink } from '../src/hub/cluster/remote-link.ts';
import type { AgentLink } from '../src/hub/gateway/agent-link.ts';
import { issueClientCert, issueReplicaCert, loadOrCreateHubPki, type HubPki } from '../src/hub/pki.ts';
import { SecretBox } from '../src/hub/secret-box.ts';
import { silentLogger } from '../src/lib/logger.ts';
import { DOCKER_PREFIX } from '../src/protocol/docker-tunnel.ts';
import { startTestAgent, type TestAgent } from './support/agent-fixture.ts';
import { BUSYBOX_IMAGE, runContainer, startEngines, stopEngines, type TestEngine } from './support/engines.ts';
import { mintCode, startTestHub, waitFor, type TestHub } from './support/hub-fixture.ts';

let work: string;
let engines: TestEngine[] = [];
let hub: TestHub;
let agent: TestAgent;
let pki: HubPki;
let server: PeerServer;
let sessions: PeerSessions;
let epoch = 7;
let nodeId: string;

function linkOf(name: string): AgentLink | null {
  const node = hub.hub.registry.byName(name);
  return node ? hub.hub.registry.link(node.id) : null;
}

function remote(e = epoch, name = 'peer-a'): RemoteLink {
  return new RemoteLink({ session: sessions.session(`https://127.0.0.1:${server.port}`), nodeId, nodeName: name, epoch: e });
}

/** A tar holding one file. */
function tarOf(name: string, data: Buffer): Buffer {
  const header = Buffer.alloc(512);
  header.write(name, 0, 'utf8');
  header.write('0000644\0', 100);
  header.write('0000000\0', 108);
  header.write('0000000\0', 116);
  header.write(`${data.length.toString(8).padStart(11, '0')}\0`, 124);
  header.write('00000000000\0', 136);
  header.write('        ', 148);
  header.write('0', 156);
  header.write('ustar\0', 257);
  header.write('00', 263);
  let sum = 0;
  for (const b of header) sum += b;
  header.write(`${sum.toString(8).padStart(6, '0')}\0 `, 148);
  const pad = Buffer.alloc((512 - (data.length % 512)) % 512);
  return Buffer.concat([header, data, pad, Buffer.alloc(1024)]);
}

before(async () => {
  work = await mkdtemp(join(tmpdir(), 'dockfleet-peer-'));
  engines = await startEngines(1, { prefix: 'peer' });
  hub = await startTestHub();
  const policy = join(work, 'policy.json');
  await writeFile(policy, JSON.stringify({ sections: { ping: true, version: true, containers: true, archive: true } }));
  agent = await startTestAgent({ hubUrl: hub.url, code: await mintCode(hub, 'peer-a'), docker: engines[0]!.dockerHost, policy });
  await agent.waitConnected(1, 30_000);
  nodeId = hub.hub.registry.byName('peer-a')!.id;
  // One CA for the replicas, as they share the hub's.
  pki = await loadOrCreateHubPki(join(work, 'pki'), { hosts: ['127.0.0.1'], secrets: new SecretBox(Buffer.alloc(32, 3)) });
  const a = await issueReplicaCert(pki, 'replica-a', ['127.0.0.1']);
  const b = await issueReplicaCert(pki, 'replica-b', ['127.0.0.1']);
  server = await startPeerServer({
    tls: { key: a.keyPem, cert: a.certPem, ca: pki.caCertPem },
    host: '127.0.0.1',
    port: 0,
    log: silentLogger(),
    resolve: (node, e) => {
      const link = linkOf(node);
      if (!link || link.closed) return { refused: 'node_offline', message: `node ${node} is not held here` };
      if (e !== epoch) return { refused: 'node_moved', message: `node ${node} is held here at another epoch` };
      return link;
    },
  });
  sessions = new PeerSessions({ key: b.keyPem, cert: b.certPem, ca: pki.caCertPem });
});

after(async () => {
  sessions?.close();
  await server?.close();
  await agent?.stop();
  await hub?.stop();
  await stopEngines(engines);
  if (work) await rm(work, { recursive: true, force: true });
});

describe('peer links between replicas', { timeout: 240_000 }, () => {
  test('calls reach the agent through the replica that holds it, answered as the agent answered them', async () => {
    const ping = await remote().request({ method: 'GET', path: `${DOCKER_PREFIX}/_ping` });
    let text = '';
    for await (const c of ping.stream) text += (c as Buffer).toString();
    assert.deepEqual([ping.status, text], [200, 'OK']);
    const direct = await linkOf('peer-a')!.requestJson({ method: 'GET', path: `${DOCKER_PREFIX}/version` });
    const through = await remote().requestJson({ method: 'GET', path: `${DOCKER_PREFIX}/version` });
    assert.equal(through.status, 200);
    assert.deepEqual(through.body, direct.body);
    const missing = await remote().requestJson({ method: 'GET', path: `${DOCKER_PREFIX}/containers/no-such-container/json` });
    assert.equal(missing.status, 404, 'the engine’s own answer, not a replica’s');
  });

  test('64 MiB up and back down through the peer link, byte for byte', async () => {
    const id = await runContainer(engines[0]!, { image: BUSYBOX_IMAGE, cmd: ['sleep', '600'] });
    const data = randomBytes(64 * 1024 * 1024);
    // Uploads are piped through, as the Docker gateway does with a client's body.
    const tar = tarOf('blob.bin', data);
    const upload = remote().openStream({ ':method': 'PUT', ':path': `${DOCKER_PREFIX}/containers/${id}/archive?path=/tmp`, 'content-type': 'application/x-tar' }, { endStream: false });
    const answered = new Promise<http2.IncomingHttpHeaders>((resolve, reject) => {
      upload.once('response', resolve);
      upload.once('error', reject);
    });
    Readable.from(
      (function* () {
        for (let at = 0; at < tar.length; at += 1024 * 1024) yield tar.subarray(at, at + 1024 * 1024);
      })(),
    ).pipe(upload);
    const head = await answered;
    upload.resume();
    assert.equal(head[':status'], 200);
    const down = await remote().request({ method: 'GET', path: `${DOCKER_PREFIX}/containers/${id}/archive?path=/tmp/blob.bin`, timeoutMs: 120_000 });
    assert.equal(down.status, 200);
    const chunks: Buffer[] = [];
    for await (const c of down.stream) chunks.push(c as Buffer);
    const got = Buffer.concat(chunks);
    const size = Number.parseInt(got.subarray(124, 136).toString('utf8').replace(/\0.*$/, '').trim(), 8);
    assert.equal(size, data.length);
    assert.equal(
      createHash('sha256')
        .update(tar.subarray(512, 512 + size))
        .digest('hex'),
      createHash('sha256').update(data).digest('hex'),
    );
  });

  test('a stale epoch or a node not held there is refused by the holder, as node offline', async () => {
    await assert.rejects(remote(epoch - 1).request({ method: 'GET', path: `${DOCKER_PREFIX}/_ping` }), (err: Error & { code?: string }) => {
      assert.equal(err.code, 'node_offline');
      assert.match(err.message, /node_moved/);
      return true;
    });
    await assert.rejects(remote(epoch, 'nobody').request({ method: 'GET', path: `${DOCKER_PREFIX}/_ping` }), /node_offline/);
    // A raw stream (as the Docker gateway opens them) sees the refusal as a 421 with the replica's header.
    const raw = remote(epoch - 1).openStream({ ':method': 'GET', ':path': `${DOCKER_PREFIX}/_ping` }, { endStream: true });
    const head = await new Promise<http2.IncomingHttpHeaders>((resolve) => raw.once('response', resolve));
    raw.resume();
    assert.equal(head[':status'], 421);
    assert.equal(head['dockfleet-peer-refused'], 'node_moved');
    // And the epoch moving on is seen at once.
    epoch += 1;
    await assert.rejects(remote(epoch - 1).request({ method: 'GET', path: `${DOCKER_PREFIX}/_ping` }), /node_moved/);
    assert.equal((await remote().requestJson({ method: 'GET', path: `${DOCKER_PREFIX}/version` })).status, 200);
  });

  test('only replicas may use the peer port: an agent-style client certificate from the same CA is refused', async () => {
    const { generateKeyPairSync } = await import('node:crypto');
    const pair = generateKeyPairSync('ec', { namedCurve: 'P-256' });
    const cert = await issueClientCert(pki, { commonName: 'peer-a', publicKeyPem: pair.publicKey.export({ type: 'spki', format: 'pem' }).toString() });
    await assert.rejects(issueClientCert(pki, { commonName: 'dockfleet-replica:evil', publicKeyPem: pair.publicKey.export({ type: 'spki', format: 'pem' }).toString() }), /kept for hub replicas/);
    const outsider = new PeerSessions({ key: pair.privateKey.export({ type: 'pkcs8', format: 'pem' }).toString(), cert: cert.certPem, ca: pki.caCertPem });
    try {
      const link = new RemoteLink({ session: outsider.session(`https://127.0.0.1:${server.port}`), nodeId, nodeName: 'peer-a', epoch });
      await assert.rejects(link.request({ method: 'GET', path: `${DOCKER_PREFIX}/_ping`, timeoutMs: 10_000 }), (err: Error & { code?: string }) => err.code === 'node_offline');
    } finally {
      outsider.close();
    }
  });

  test('a reader that stops reading holds the sender back (flow control end to end)', async () => {
    const BIG = 256 * 1024 * 1024;
    const id = await runContainer(engines[0]!, { image: BUSYBOX_IMAGE, cmd: ['sh', '-c', `dd if=/dev/zero of=/big.tmp bs=1048576 count=${BIG / 1048576} && mv /big.tmp /big && sleep 600`] });
    const stat = `${DOCKER_PREFIX}/containers/${id}/archive?path=/big`;
    await waitFor(async () => (await remote().request({ method: 'HEAD', path: stat })).status === 200, 60_000, '/big written');
    const res = await remote().request({ method: 'GET', path: stat, timeoutMs: 60_000 });
    assert.equal(res.status, 200);
    res.stream.pause();
    const before = process.memoryUsage().rss;
    await new Promise((r) => setTimeout(r, 3_000));
    const grown = process.memoryUsage().rss - before;
    // Unbounded, all 256 MiB would wait in memory; bounded, what waits is the streams' windows on both hops.
    assert.ok(grown < 96 * 1024 * 1024, `memory grew ${grown} bytes while nobody read`);
    let total = 0;
    for await (const c of res.stream) total += (c as Buffer).length;
    assert.ok(total >= BIG, `the file arrived whole once read (${total} bytes)`);
  });
});
