/** A hand-driven gateway client: real TLS and the real WebSocket upgrade, but the test decides
 * every byte after it, so it can misbehave (wrong order, garbage, silence, replay) the way a
 * hostile agent would. */
import { randomBytes } from 'node:crypto';
import tls, { type TLSSocket } from 'node:tls';
import { AGENT_STREAM_START, HUB_STREAM_START, websocketAccept } from '../../src/protocol/gateway-stream.ts';
import { EKM_CONTEXT, EKM_LABEL, EKM_LENGTH, GATEWAY_PATH, GATEWAY_SUBPROTOCOL, PROTOCOL_VERSION, authPayload } from '../../src/protocol/handshake.ts';
import { signWith } from '../../src/protocol/node-keys.ts';

export interface RawClient {
  tls: TLSSocket;
  frames: any[];
  /** Sends one handshake line (a string is sent as it is, plus the newline). */
  send(line: string | object): void;
  /** Sends bytes as they are, inside the stream. */
  sendRaw(bytes: Buffer): void;
  nextFrame(timeoutMs?: number): Promise<any>;
  closed: Promise<void>;
  terminate(): void;
  ekm(): Buffer;
}

export interface RawClientOptions {
  protocol?: string;
  /** Leave out the agent's stream start (to test a hub that gets something else). */
  streamStart?: Buffer;
}

export async function openRawClient(hubUrl: string, caPem: string, opts: RawClientOptions = {}): Promise<RawClient> {
  const url = new URL(hubUrl);
  const socket = await new Promise<TLSSocket>((resolve, reject) => {
    const s = tls.connect({ host: url.hostname, port: Number(url.port), ca: caPem, servername: 'localhost' });
    s.once('secureConnect', () => resolve(s));
    s.once('error', reject);
  });
  socket.on('error', () => {});
  const key = randomBytes(16).toString('base64');
  socket.write(
    [
      `GET ${GATEWAY_PATH} HTTP/1.1`,
      `Host: ${url.host}`,
      'Connection: Upgrade',
      'Upgrade: websocket',
      `Sec-WebSocket-Key: ${key}`,
      'Sec-WebSocket-Version: 13',
      `Sec-WebSocket-Protocol: ${opts.protocol ?? GATEWAY_SUBPROTOCOL}`,
      '',
      '',
    ].join('\r\n'),
  );
  let buffer = Buffer.alloc(0);
  const frames: any[] = [];
  const waiters: Array<() => void> = [];
  let headDone = false;
  let started = false;
  const closed = new Promise<void>((resolve) =>
    socket.once('close', () => {
      for (const w of waiters.splice(0)) w();
      resolve();
    }),
  );
  const upgraded = new Promise<void>((resolve, reject) => {
    socket.once('close', () => reject(new Error('closed before the upgrade')));
    socket.on('data', (chunk: Buffer) => {
      buffer = Buffer.concat([buffer, chunk]);
      if (!headDone) {
        const end = buffer.indexOf('\r\n\r\n');
        if (end < 0) return;
        const head = buffer.subarray(0, end).toString('latin1');
        buffer = buffer.subarray(end + 4);
        if (!head.startsWith('HTTP/1.1 101')) return reject(new Error(`upgrade refused: ${head.split('\r\n')[0]}`));
        if (!head.includes(`Sec-WebSocket-Accept: ${websocketAccept(key)}`)) return reject(new Error('bad Sec-WebSocket-Accept'));
        headDone = true;
        socket.write(opts.streamStart ?? AGENT_STREAM_START);
        resolve();
      }
      if (!started) {
        if (buffer.length < HUB_STREAM_START.length) return;
        if (!buffer.subarray(0, HUB_STREAM_START.length).equals(HUB_STREAM_START)) throw new Error('hub stream does not start with its frame header');
        buffer = buffer.subarray(HUB_STREAM_START.length);
        started = true;
      }
      // After the welcome the stream carries HTTP/2, which this client does not read.
      for (let nl = buffer.indexOf(0x0a); nl >= 0 && frames.at(-1)?.t !== 'welcome'; nl = buffer.indexOf(0x0a)) {
        frames.push(JSON.parse(buffer.subarray(0, nl).toString('utf8')));
        buffer = buffer.subarray(nl + 1);
      }
      for (const w of waiters.splice(0)) w();
    });
  });
  await upgraded;
  let read = 0;
  return {
    tls: socket,
    frames,
    closed,
    send: (line) => void socket.write(`${typeof line === 'string' ? line : JSON.stringify(line)}\n`),
    sendRaw: (bytes) => void socket.write(bytes),
    terminate: () => void socket.destroy(),
    ekm: () => socket.exportKeyingMaterial(EKM_LENGTH, EKM_LABEL, EKM_CONTEXT),
    async nextFrame(timeoutMs = 5_000) {
      const deadline = Date.now() + timeoutMs;
      while (frames.length <= read) {
        if (socket.destroyed) throw new Error('closed before the next frame');
        const left = deadline - Date.now();
        if (left <= 0) throw new Error('no frame in time');
        await new Promise<void>((r) => {
          const t = setTimeout(r, left);
          waiters.push(() => {
            clearTimeout(t);
            r();
          });
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
