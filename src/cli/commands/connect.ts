/**
 * `dockfleet connect NAME --socket PATH`: NAME's Docker API on a local unix socket, for tools
 * that only speak a socket (docker-compose v1, SDKs). Each call is sent to the hub with the
 * user's token; hijacked calls (attach/exec) are relayed with Docker's 101 handshake.
 */
import http, { type IncomingMessage } from 'node:http';
import https from 'node:https';
import { chmod, lstat, unlink } from 'node:fs/promises';
import net, { type Socket } from 'node:net';
import type { Duplex } from 'node:stream';
import { pipeline } from 'node:stream';
import { parseArgs } from 'node:util';
import { dockerErrorBody, forwardableHeaders } from '../../protocol/docker-tunnel.ts';
import { http1Head, http1JsonAnswer } from '../../lib/http1-head.ts';
import { readUpgradeBody } from '../../lib/upgrade-body.ts';
import { UsageError, type Command } from '../command.ts';
import { TARGET_HELP, TARGET_OPTIONS, resolveTarget, type HubTarget } from '../hub-client.ts';
import { untilSignal } from '../until-signal.ts';


/** Removes a stale socket file, but never a live socket or anything that is not a socket. */
async function clearStaleSocket(path: string): Promise<void> {
  const info = await lstat(path).catch(() => null);
  if (!info) return;
  if (!info.isSocket()) throw new UsageError(`${path} exists and is not a socket`);
  const live = await new Promise<boolean>((resolve) => {
    const probe = net.connect(path, () => { probe.destroy(); resolve(true); });
    probe.once('error', () => resolve(false));
  });
  if (live) throw new UsageError(`${path} is in use by another process`);
  await unlink(path);
}

export function createConnectServer(target: HubTarget, node: string): http.Server {
  const agent = new https.Agent({ keepAlive: true, ca: target.ca, maxSockets: 64 });
  const base = `/docker/nodes/${encodeURIComponent(node)}`;
  const hubRequest = (req: IncomingMessage, headers: Record<string, string | string[]>): http.ClientRequest =>
    https.request(new URL(`${base}${req.url ?? '/'}`, target.url), {
      method: req.method, agent, ca: target.ca,
      headers: { ...headers, authorization: `Bearer ${target.token}` },
    });

  const server = http.createServer((req, res) => {
    const out = hubRequest(req, forwardableHeaders(req.headers));
    out.once('response', (hubRes) => {
      res.writeHead(hubRes.statusCode ?? 502, forwardableHeaders(hubRes.headers));
      res.flushHeaders();
      pipeline(hubRes, res, () => {});
    });
    out.once('error', (err) => {
      if (res.headersSent) return void res.destroy();
      const body = dockerErrorBody(`dockfleet connect: cannot reach the hub: ${err.message}`);
      res.writeHead(502, { 'content-type': 'application/json', 'content-length': Buffer.byteLength(body) }).end(body);
    });
    res.once('close', () => out.destroy());
    pipeline(req, out, () => {});
  });

  server.on('upgrade', (req: IncomingMessage, client: Duplex, head: Buffer) => {
    client.on('error', () => {});
    void readUpgradeBody(client, head, req.headers['content-length']).then(
      ({ body, rest }) => {
        const out = hubRequest(req, { ...forwardableHeaders(req.headers), connection: 'Upgrade', upgrade: 'tcp' });
        out.once('upgrade', (hubRes, hubSocket: Socket, hubHead: Buffer) => {
          client.write(http1Head(101, hubRes.headers));
          if (hubHead.length > 0) client.write(hubHead);
          if (rest.length > 0) hubSocket.write(rest);
          hubSocket.on('error', () => client.destroy());
          hubSocket.pipe(client);
          client.pipe(hubSocket);
          client.resume();
        });
        out.once('response', (hubRes) => {
          client.write(http1Head(hubRes.statusCode ?? 502, { ...hubRes.headers, connection: 'close' }));
          hubRes.pipe(client);
        });
        out.once('error', (err) => client.end(http1JsonAnswer(502, dockerErrorBody(err.message))));
        out.end(body);
      },
      (err: Error) => client.end(http1JsonAnswer(400, dockerErrorBody(err.message))),
    );
  });
  return server;
}

export const connectCommand: Command = {
  summary: "serve NAME's Docker API on a local unix socket until stopped",
  usage: `dockfleet connect NAME --socket PATH

Then: DOCKER_HOST=unix://PATH docker ps   (or docker-compose, or any Docker SDK)

${TARGET_HELP}`,
  async run(args) {
    const { values, positionals } = parseArgs({ args, strict: true, allowPositionals: true, options: { ...TARGET_OPTIONS, socket: { type: 'string' } } });
    if (positionals.length !== 1) throw new UsageError('expected exactly one NAME');
    if (!values.socket) throw new UsageError('--socket PATH is required');
    const target = resolveTarget(values);
    await clearStaleSocket(values.socket);
    const server = createConnectServer(target, positionals[0]!);
    await new Promise<void>((resolve, reject) => {
      server.once('error', reject);
      server.listen(values.socket, () => resolve());
    });
    await chmod(values.socket, 0o600);
    process.stdout.write(`serving node ${positionals[0]} on unix://${values.socket}\n`);
    await untilSignal();
    server.close();
    server.closeAllConnections();
  },
};
