/**
 * The agent's half of the edge: on EDGE_DIAL_PATH it connects to a running container's address
 * on this host (from the engine's own answer, never from the hub's word) and pipes the TCP
 * socket through the HTTP/2 stream, with backpressure both ways. Nothing but a running
 * container's network address on this engine is ever dialled, so the hub cannot use the agent
 * to reach other hosts on its network.
 */
import net from 'node:net';
import type { Http2ServerRequest, Http2ServerResponse } from 'node:http2';
import { pipeline } from 'node:stream';
import { EDGE_DIAL_REASON_HEADER, parseEdgeDial, type EdgeDialRefusal } from '../../protocol/edge-dial.ts';
import type { EngineClient } from '../engine-client.ts';
import type { Logger } from '../../lib/logger.ts';
import type { TunnelHandler } from '../tunnel-handler.ts';

const CONNECT_TIMEOUT_MS = 5_000;

interface InspectAnswer {
  State?: { Running?: boolean };
  NetworkSettings?: { IPAddress?: string; Networks?: Record<string, { IPAddress?: string } | null> };
}

/** The container's addresses on this host's networks, first the default bridge's. */
export function containerAddresses(inspect: InspectAnswer): string[] {
  const found = new Set<string>();
  const primary = inspect.NetworkSettings?.IPAddress;
  if (primary && net.isIP(primary)) found.add(primary);
  for (const network of Object.values(inspect.NetworkSettings?.Networks ?? {})) {
    const ip = network?.IPAddress;
    if (ip && net.isIP(ip)) found.add(ip);
  }
  return [...found];
}

function refuse(res: Http2ServerResponse, status: number, reason: EdgeDialRefusal, message: string): void {
  const body = JSON.stringify({ reason, message });
  res.writeHead(status, { 'content-type': 'application/json', [EDGE_DIAL_REASON_HEADER]: reason });
  res.end(body);
}

export function createContainerDialer(engine: EngineClient, log: Logger): TunnelHandler {
  return async (req: Http2ServerRequest, res: Http2ServerResponse) => {
    const dial = req.method === 'POST' ? parseEdgeDial(req.url) : null;
    if (!dial) return refuse(res, 400, 'bad_request', 'a dial wants POST with container=ID and port=1..65535');
    let inspect: InspectAnswer;
    try {
      inspect = await engine.json<InspectAnswer>({ path: `/containers/${dial.containerId}/json`, timeoutMs: 5_000 });
    } catch {
      return refuse(res, 404, 'no_container', `no container ${dial.containerId.slice(0, 12)} on this host`);
    }
    if (inspect.State?.Running !== true) return refuse(res, 503, 'not_running', `container ${dial.containerId.slice(0, 12)} is not running`);
    const address = containerAddresses(inspect)[0];
    if (!address) return refuse(res, 503, 'no_address', `container ${dial.containerId.slice(0, 12)} has no network address`);

    const socket = net.connect({ host: address, port: dial.port, noDelay: true });
    socket.setTimeout(CONNECT_TIMEOUT_MS, () => socket.destroy(new Error('connect timed out')));
    socket.once('error', (err) => {
      if (!res.headersSent) return refuse(res, 502, 'connect_failed', `port ${dial.port} of the container refused: ${err.message}`);
      res.stream.close();
    });
    socket.once('connect', () => {
      socket.setTimeout(0);
      res.writeHead(200);
      // The stream is the connection from here on: client bytes in, container bytes out.
      pipeline(req, socket, () => {});
      pipeline(socket, res.stream, (err) => {
        if (err) log.debug({ err, container: dial.containerId.slice(0, 12) }, 'edge connection ended');
      });
    });
    req.once('close', () => { if (!socket.destroyed && !res.headersSent) socket.destroy(); });
  };
}
