/** A hand-driven gateway client: real TLS and WebSocket, but the test decides every frame, so
 * it can misbehave (wrong order, garbage, silence, replay) the way a hostile agent would. */
import tls, { type TLSSocket } from 'node:tls';
import { WebSocket } from 'ws';
import { EKM_CONTEXT, EKM_LABEL, EKM_LENGTH, GATEWAY_PATH, GATEWAY_SUBPROTOCOL, PROTOCOL_VERSION, authPayload } from '../../src/protocol/handshake.ts';
import { signWith } from '../../src/protocol/node-keys.ts';

export interface RawClient {
  ws: WebSocket;
  tls: TLSSocket;
  frames: any[];
  nextFrame(timeoutMs?: number): Promise<any>;
  closed: Promise<{ code: number; reason: string }>;
  ekm(): Buffer;
}

export async function openRawClient(hubUrl: string, caPem: string, opts: { protocol?: string } = {}): Promise<RawClient> {
  const url = new URL(hubUrl);
  const socket = await new Promise<TLSSocket>((resolve, reject) => {
    const s = tls.connect({ host: url.hostname, port: Number(url.port), ca: caPem, servername: 'localhost' });
    s.once('secureConnect', () => resolve(s));
    s.once('error', reject);
  });
  const wsUrl = new URL(GATEWAY_PATH, url);
  wsUrl.protocol = 'wss:';
  const ws = new WebSocket(wsUrl, [opts.protocol ?? GATEWAY_SUBPROTOCOL], { createConnection: () => socket, perMessageDeflate: false });
  const frames: any[] = [];
  const waiters: Array<() => void> = [];
  ws.on('message', (data, isBinary) => {
    frames.push(isBinary ? { binary: true } : JSON.parse(data.toString()));
    for (const w of waiters.splice(0)) w();
  });
  ws.on('error', () => {});
  const closed = new Promise<{ code: number; reason: string }>((resolve) => ws.once('close', (code, reason) => {
    for (const w of waiters.splice(0)) w();
    resolve({ code, reason: reason.toString() });
  }));
  await new Promise<void>((resolve, reject) => {
    ws.once('open', () => resolve());
    ws.once('unexpected-response', (_req, res) => reject(new Error(`upgrade refused: ${res.statusCode}`)));
    ws.once('error', reject);
  });
  let read = 0;
  return {
    ws, tls: socket, frames, closed,
    ekm: () => socket.exportKeyingMaterial(EKM_LENGTH, EKM_LABEL, EKM_CONTEXT),
    async nextFrame(timeoutMs = 5_000) {
      const deadline = Date.now() + timeoutMs;
      while (frames.length <= read) {
        if (ws.readyState === ws.CLOSED) throw new Error('closed before the next frame');
        const left = deadline - Date.now();
        if (left <= 0) throw new Error('no frame in time');
        await new Promise<void>((r) => {
          const t = setTimeout(r, left);
          waiters.push(() => { clearTimeout(t); r(); });
        });
      }
      return frames[read++];
    },
  };
}

/** Builds a valid auth frame for a node key, bound to this connection's nonce and TLS session. */
export function authFrameFor(client: RawClient, nonce: string, node: string, keyId: string, privateKeyPem: string): string {
  return JSON.stringify({ t: 'auth', v: PROTOCOL_VERSION, node, keyId, sig: signWith(privateKeyPem, authPayload(node, nonce, client.ekm())), agentVersion: 'test' });
}
