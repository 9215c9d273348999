/**
 * Experiment: what one idle agent channel costs the hub, layer by layer. The measured process
 * plays the hub (HTTPS server with the hub's PKI), a child process plays N agents. Layers:
 *
 *   tls         TLS connection, idle after the handshake (https.Server, as the hub listens)
 *   ws          + WebSocket upgrade (ws, perMessageDeflate off), idle
 *   h2          + HTTP/2 client session over WebSocketDuplex with the channel's H2_SETTINGS,
 *                 widened session window, 64 MB maxSessionMemory and heartbeats (as AgentLink)
 *   h2-default  same, Node's default HTTP/2 settings and window
 *   h2-inv      h2 + the long-lived inventory stream holding two small NDJSON lines
 *   h2-inv-default  h2-inv with Node's default HTTP/2 settings and window
 *   h2-tls      for comparison: the same HTTP/2 session straight on the TLS socket (no WebSocket,
 *                 no JS duplex in between; what an HTTP/1.1 Upgrade to a raw stream would cost)
 *
 *   node --expose-gc --import tsx bench/lib/channel-memory.ts LAYER [N=1000]
 *
 * Prints per-connection deltas of rss / heapUsed / external / arrayBuffers, measured after
 * forced GCs between a warm-up of 50 connections and N, and the hub side's CPU (% of one core)
 * over 15 s with all N idle. CHANMEM_HUB_PING=0 leaves the heartbeat to the agents alone.
 */
import http2, { type ClientHttp2Session, type ServerHttp2Session, type Settings } from 'node:http2';
import https from 'node:https';
import { spawn } from 'node:child_process';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { createInterface } from 'node:readline';
import tls, { type TLSSocket } from 'node:tls';
import { fileURLToPath } from 'node:url';
import { WebSocket, WebSocketServer } from 'ws';
import { loadOrCreateHubPki } from '../../src/hub/pki.ts';
import { H2_MAX_SESSION_MEMORY_MB, H2_SETTINGS, startHeartbeat, widenSessionWindow } from '../../src/lib/h2-channel.ts';
import { WebSocketDuplex } from '../../src/lib/websocket-duplex.ts';
import { HEARTBEAT_MS, DEAD_AFTER_MS } from '../../src/protocol/heartbeat.ts';
import { INVENTORY_PATH } from '../../src/protocol/inventory.ts';

const LAYERS = ['tls', 'ws', 'h2', 'h2-default', 'h2-inv', 'h2-inv-default', 'h2-tls'] as const;
type Layer = (typeof LAYERS)[number];
const WARM = 50;
const HUB_PINGS = process.env.CHANMEM_HUB_PING !== '0';

const tuned = (layer: Layer): boolean => !layer.endsWith('-default');
const h2Options = (layer: Layer): { settings?: Settings; maxSessionMemory?: number } =>
  tuned(layer) ? { settings: H2_SETTINGS, maxSessionMemory: H2_MAX_SESSION_MEMORY_MB } : {};

function gcNow(): void {
  const gc = (globalThis as { gc?: () => void }).gc;
  if (!gc) throw new Error('run with --expose-gc');
  gc();
  gc();
}

async function hubSide(layer: Layer, n: number): Promise<void> {
  const dir = await mkdtemp(join(tmpdir(), 'chanmem-'));
  const pki = await loadOrCreateHubPki(dir, { hosts: ['127.0.0.1'] });
  const keep: unknown[] = [];
  const server = https.createServer({ cert: pki.serverCertPem, key: pki.serverKeyPem, minVersion: 'TLSv1.2', keepAliveTimeout: 65_000 });
  server.on('tlsClientError', () => {});
  if (layer === 'h2-tls') {
    // Take the socket before the HTTP/1.1 parser does: HTTP/2 straight on TLS.
    server.removeAllListeners('secureConnection');
    server.on('secureConnection', (socket: TLSSocket) => {
      const session = http2.connect('http://agent.dockfleet.invalid', { createConnection: () => socket, ...h2Options(layer) });
      widenSessionWindow(session);
      session.on('error', () => {});
      if (HUB_PINGS) startHeartbeat(session, { intervalMs: HEARTBEAT_MS, deadAfterMs: DEAD_AFTER_MS, onDead: () => {}, onAlive: () => {} });
      keep.push(session);
    });
  }
  const wss = new WebSocketServer({ noServer: true, perMessageDeflate: false, maxPayload: 4 * 1024 * 1024 });
  server.on('upgrade', (req, socket, head) => {
    wss.handleUpgrade(req, socket, head, (ws) => {
      keep.push(ws);
      if (layer === 'ws') return;
      const duplex = new WebSocketDuplex(ws, () => {});
      duplex.on('error', () => {});
      const session: ClientHttp2Session = http2.connect('http://agent.dockfleet.invalid', { createConnection: () => duplex, ...h2Options(layer) });
      if (tuned(layer)) widenSessionWindow(session);
      session.on('error', () => {});
      if (HUB_PINGS) startHeartbeat(session, { intervalMs: HEARTBEAT_MS, deadAfterMs: DEAD_AFTER_MS, onDead: () => {}, onAlive: () => {} });
      keep.push(session);
      if (layer.startsWith('h2-inv')) {
        const stream = session.request({ ':method': 'GET', ':path': INVENTORY_PATH });
        const lines: string[] = [];
        stream.on('data', (c: Buffer) => lines.push(c.toString('utf8')));
        stream.on('error', () => {});
        stream.end();
        keep.push(lines);
      }
    });
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const port = (server.address() as { port: number }).port;

  const child = spawn(process.execPath, ['--import', 'tsx', fileURLToPath(import.meta.url), 'agents', layer, String(port)], {
    stdio: ['pipe', 'pipe', 'inherit'],
    env: { ...process.env, CHANMEM_CA: pki.caCertPem },
  });
  const lines = createInterface({ input: child.stdout! })[Symbol.asyncIterator]();
  const connect = async (total: number): Promise<void> => {
    child.stdin!.write(`${total}\n`);
    const { value } = await lines.next();
    if (value !== `connected ${total}`) throw new Error(`agents said ${String(value)}`);
  };
  const settle = async (): Promise<NodeJS.MemoryUsage> => {
    await new Promise((r) => setTimeout(r, 4_000)); // a heartbeat round or so
    gcNow();
    await new Promise((r) => setTimeout(r, 500));
    gcNow();
    return process.memoryUsage();
  };
  try {
    await connect(WARM);
    const m1 = await settle();
    await connect(n);
    const m2 = await settle();
    const per = (k: keyof NodeJS.MemoryUsage): number => Math.round((m2[k] - m1[k]) / (n - WARM));
    const c0 = process.cpuUsage();
    const t0 = process.hrtime.bigint();
    await new Promise((r) => setTimeout(r, 15_000));
    const c1 = process.cpuUsage(c0);
    const cpuPercent = Math.round(((c1.user + c1.system) / (Number(process.hrtime.bigint() - t0) / 1000)) * 10_000) / 100;
    const row = {
      layer, n, hubPings: HUB_PINGS, rss: per('rss'), heapUsed: per('heapUsed'), external: per('external'), arrayBuffers: per('arrayBuffers'), cpuPercent,
    };
    process.stdout.write(`${JSON.stringify(row)}\n`);
  } finally {
    child.kill('SIGKILL');
    server.close();
    await rm(dir, { recursive: true, force: true });
    process.exit(0);
  }
}

/** The agents' process: opens connections of the layer when told how many to have in total. */
async function agentsSide(layer: Layer, port: number): Promise<void> {
  const ca = process.env.CHANMEM_CA!;
  const keep: unknown[] = [];
  let have = 0;
  const one = async (): Promise<void> => {
    const socket = await new Promise<TLSSocket>((resolve, reject) => {
      const s = tls.connect({ host: '127.0.0.1', port, ca, ALPNProtocols: ['http/1.1'] });
      s.once('secureConnect', () => resolve(s));
      s.once('error', reject);
    });
    keep.push(socket);
    if (layer === 'tls') return;
    if (layer === 'h2-tls') {
      const server = http2.createServer(h2Options(layer), (_req, res) => {
        res.writeHead(204);
        res.end();
      });
      // The HTTP/2 server hands 'http/1.1'-negotiated sockets to HTTP/1; this one is HTTP/2.
      Object.defineProperty(socket, 'alpnProtocol', { value: 'h2' });
      const session = await new Promise<ServerHttp2Session>((resolve) => {
        server.once('session', resolve);
        server.emit('connection', socket);
      });
      widenSessionWindow(session);
      session.on('error', () => {});
      startHeartbeat(session, { intervalMs: HEARTBEAT_MS, deadAfterMs: DEAD_AFTER_MS, onDead: () => {} });
      keep.push(server, session);
      return;
    }
    const ws = new WebSocket(`wss://127.0.0.1:${port}/gateway/v1/agent`, { createConnection: () => socket, perMessageDeflate: false });
    await new Promise<void>((resolve, reject) => {
      ws.once('open', () => resolve());
      ws.once('error', reject);
    });
    keep.push(ws);
    if (layer === 'ws') return;
    const duplex = new WebSocketDuplex(ws, () => {});
    duplex.on('error', () => {});
    const server = http2.createServer(h2Options(layer), (req, res) => {
      if (req.url === INVENTORY_PATH) {
        res.writeHead(200, { 'content-type': 'application/x-ndjson' });
        res.write(`${JSON.stringify({ t: 'engine', state: 'up', facts: { version: '27.3.1', hostname: 'x'.repeat(20) } })}\n${JSON.stringify({ t: 'section', section: 'containers', items: [{ Id: 'a'.repeat(64), Names: ['/web'], State: 'running' }], at: Date.now() })}\n`);
        return;
      }
      res.writeHead(204);
      res.end();
    });
    const session = await new Promise<ServerHttp2Session>((resolve) => {
      server.once('session', resolve);
      server.emit('connection', duplex);
    });
    if (tuned(layer)) widenSessionWindow(session);
    session.on('error', () => {});
    startHeartbeat(session, { intervalMs: HEARTBEAT_MS, deadAfterMs: DEAD_AFTER_MS, onDead: () => {} });
    keep.push(server, session);
  };
  for await (const line of createInterface({ input: process.stdin })) {
    const total = Number(line);
    const batch: Array<Promise<void>> = [];
    while (have < total) {
      batch.push(one());
      have++;
      if (batch.length >= 32) await Promise.all(batch.splice(0));
    }
    await Promise.all(batch);
    process.stdout.write(`connected ${have}\n`);
  }
}

const [mode, layerArg, third] = process.argv.slice(2);
if (mode === 'agents') {
  await agentsSide(layerArg as Layer, Number(third));
} else {
  const layer = mode as Layer;
  if (!LAYERS.includes(layer)) {
    process.stderr.write(`usage: channel-memory.ts ${LAYERS.join('|')} [N]\n`);
    process.exit(2);
  }
  await hubSide(layer, Number(layerArg ?? 1000));
}
