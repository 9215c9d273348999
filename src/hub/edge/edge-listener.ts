/**
 * The edge port (`--edge-listen HOST:PORT`): public HTTPS for the apps that labels publish,
 * apart from the management port. It takes its certificate from a function of the SNI name, so
 * ACME and user-supplied certificates can be added per host; it is held to the same listener
 * limits as the management port (handshake, head and body-stall deadlines, per-address cap).
 * Agents never connect here: no upgrade counts as an agent link.
 */
import https from 'node:https';
import tls, { type SecureContext, type TLSSocket } from 'node:tls';
import type { AddressInfo } from 'node:net';
import type { Logger } from '../../lib/logger.ts';
import { ConnectionGuard } from '../listener/connection-guard.ts';
import { bodyStalledAnswer } from '../listener/limit-answers.ts';
import { httpServerTimeouts, type ListenerLimits } from '../listener/listener-limits.ts';
import type { EdgeProxy } from './edge-proxy.ts';

/** The certificate and key for a server name (SNI; '' when the client sent none). */
export type EdgeCertificateSource = (serverName: string) => { cert: string; key: string };

export interface EdgeListenerOptions {
  host: string;
  port: number;
  limits: ListenerLimits;
  certificate: EdgeCertificateSource;
  proxy: EdgeProxy;
  log: Logger;
}

export interface RunningEdge {
  readonly port: number;
  close(): void;
}

export async function startEdgeListener(opts: EdgeListenerOptions): Promise<RunningEdge> {
  const contexts = new Map<string, { pem: string; context: SecureContext }>();
  const contextFor = (name: string): SecureContext => {
    const { cert, key } = opts.certificate(name);
    const cached = contexts.get(name);
    if (cached && cached.pem === cert) return cached.context;
    const context = tls.createSecureContext({ cert, key, minVersion: 'TLSv1.2' });
    if (contexts.size > 1024) contexts.clear();
    contexts.set(name, { pem: cert, context });
    return context;
  };
  const fallback = opts.certificate('');
  const server = https.createServer(
    {
      cert: fallback.cert, key: fallback.key, minVersion: 'TLSv1.2',
      SNICallback: (name, done) => {
        try { done(null, contextFor(name.toLowerCase())); } catch (err) { done(err as Error); }
      },
      allowHalfOpen: true,
      ...httpServerTimeouts(opts.limits),
    },
    opts.proxy.handleRequest,
  );
  const guard = new ConnectionGuard({
    limits: opts.limits, log: opts.log, isAgentUpgrade: () => false,
    stallAnswer: bodyStalledAnswer, agentLinksFullAnswer: '',
  });
  guard.attach(server);
  server.on('upgrade', guard.guardUpgrades(opts.proxy.handleUpgrade));
  server.on('tlsClientError', () => {});
  server.on('secureConnection', (socket: TLSSocket) => socket.disableRenegotiation());
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(opts.port, opts.host, () => resolve());
  });
  const { port } = server.address() as AddressInfo;
  return {
    port,
    close() {
      server.close();
      guard.close();
      server.closeAllConnections();
    },
  };
}
