/**
 * `dockfleet connect NAME --socket PATH`: NAME's Docker API on a local unix socket, for tools
 * that only speak a socket (docker-compose v1, SDKs). Each call is sent to the hub with the
 * user's token; hijacked calls (attach/exec) are relayed with Docker's 101 handshake.
 *
 * With an operator key on this machine (src/cli/intent/operator-key-file.ts) every call is
 * signed for the node (issue 13): a small body by its digest, a long or chunked one and a
 * hijacked call's stdin in sealed frames. A host whose policy asks for signed intent runs only
 * calls signed so; without a key (or with --unsigned) calls go as they are.
 */
import http, { type IncomingMessage } from 'node:http';
import https from 'node:https';
import { chmod, lstat, unlink } from 'node:fs/promises';
import net, { type Socket } from 'node:net';
import type { Duplex } from 'node:stream';
import { pipeline } from 'node:stream';
import { parseArgs } from 'node:util';
import { clientRequestHeaders, dockerErrorBody, forwardableHeaders } from '../../protocol/docker-tunnel.ts';
import { http1Head, http1JsonAnswer } from '../../lib/http1-head.ts';
import type { IntentSigner } from '../../lib/intent-keys.ts';
import { readUpgradeBody } from '../../lib/upgrade-body.ts';
import { UsageError, type Command } from '../command.ts';
import { TARGET_HELP, TARGET_OPTIONS, resolveTarget, type HubTarget } from '../hub-client.ts';
import { loadOperatorSigner } from '../intent/operator-key-file.ts';
import { hubPaths, signCall, signHijack } from '../intent/signed-call.ts';
import { untilSignal } from '../until-signal.ts';

/** Removes a stale socket file, but never a live socket or anything that is not a socket. */
async function clearStaleSocket(path: string): Promise<void> {
  const info = await lstat(path).catch(() => null);
  if (!info) return;
  if (!info.isSocket()) throw new UsageError(`${path} exists and is not a socket`);
  const live = await new Promise<boolean>((resolve) => {
    const probe = net.connect(path, () => {
      probe.destroy();
      resolve(true);
    });
    probe.once('error', () => resolve(false));
  });
  if (live) throw new UsageError(`${path} is in use by another process`);
  await unlink(path);
}

export interface ConnectOptions {
  /** Signs every call with this operator key; null sends calls unsigned. */
  signer?: IntentSigner | null;
}

export function createConnectServer(target: HubTarget, node: string, options: ConnectOptions = {}): http.Server {
  const signer = options.signer ?? null;
  const agent = new https.Agent({ keepAlive: true, ca: target.ca, maxSockets: 64 });
  const base = `/docker/nodes/${encodeURIComponent(node)}`;
  // A client's own x-dockfleet-* headers never travel: the intent is this process's to add.
  const hubRequest = (method: string, hubPath: string, headers: Record<string, string | string[]>): http.ClientRequest =>
    https.request({
      protocol: target.url.protocol,
      hostname: target.url.hostname.replace(/^\[(.*)\]$/, '$1'),
      port: target.url.port,
      path: hubPath,
      method,
      agent,
      ca: target.ca,
      headers: { ...headers, authorization: `Bearer ${target.token}` },
    });
  const cannotReach = (err: Error): string => dockerErrorBody(`dockfleet connect: cannot reach the hub: ${err.message}`);

  const server = http.createServer((req, res) => {
    const { hubPath, enginePath } = hubPaths(base, req.url ?? '/', target.url);
    const method = req.method ?? 'GET';
    const send = (headers: Record<string, string | string[]>): http.ClientRequest => {
      const out = hubRequest(method, hubPath, headers);
      out.once('response', (hubRes) => {
        res.writeHead(hubRes.statusCode ?? 502, forwardableHeaders(hubRes.headers));
        res.flushHeaders();
        pipeline(hubRes, res, () => {});
      });
      out.once('error', (err) => {
        if (res.headersSent) return void res.destroy();
        const body = cannotReach(err);
        res.writeHead(502, { 'content-type': 'application/json', 'content-length': Buffer.byteLength(body) }).end(body);
      });
      res.once('close', () => out.destroy());
      return out;
    };
    const headers = clientRequestHeaders(req.headers);
    if (signer === null) return void pipeline(req, send(headers), () => {});
    void signCall(signer, node, req, enginePath).then(
      (call) => {
        const hadLength = headers['content-length'] !== undefined;
        delete headers['content-length'];
        if (call.sealer) {
          // Sealed frames, chunked: Content-Length would describe the unframed body.
          pipeline(req, call.sealer, send({ ...headers, ...call.headers }), () => {});
          return;
        }
        if (call.body !== null || hadLength) headers['content-length'] = String(call.body?.length ?? 0);
        send({ ...headers, ...call.headers }).end(call.body ?? undefined);
      },
      (err: Error) => {
        const body = dockerErrorBody(`dockfleet connect: could not read the request body: ${err.message}`);
        if (!res.headersSent) res.writeHead(400, { 'content-type': 'application/json', 'content-length': Buffer.byteLength(body) }).end(body);
      },
    );
  });

  server.on('upgrade', (req: IncomingMessage, client: Duplex, head: Buffer) => {
    client.on('error', () => {});
    void readUpgradeBody(client, head, req.headers['content-length']).then(
      ({ body, rest }) => {
        const { hubPath, enginePath } = hubPaths(base, req.url ?? '/', target.url);
        const method = req.method ?? 'POST';
        const signed = signer === null ? null : signHijack(signer, node, method, enginePath, body);
        const headers: Record<string, string | string[]> = { ...clientRequestHeaders(req.headers), ...signed?.headers, connection: 'Upgrade', upgrade: 'tcp' };
        // Signed, the body is the JSON body's frames and seal: the hub reads exactly that much.
        if (signed) headers['content-length'] = String(signed.body.length);
        const out = hubRequest(method, hubPath, headers);
        out.once('upgrade', (hubRes, hubSocket: Socket, hubHead: Buffer) => {
          client.write(http1Head(101, hubRes.headers));
          if (hubHead.length > 0) client.write(hubHead);
          hubSocket.on('error', () => client.destroy());
          hubSocket.pipe(client);
          // Stdin: sealed on a signed connection; its end (the client's half-close) seals last.
          const stdin = signed?.sealer ?? hubSocket;
          if (signed) signed.sealer.pipe(hubSocket);
          if (rest.length > 0) stdin.write(rest);
          client.pipe(stdin);
          client.resume();
        });
        out.once('response', (hubRes) => {
          client.write(http1Head(hubRes.statusCode ?? 502, { ...hubRes.headers, connection: 'close' }));
          hubRes.pipe(client);
        });
        out.once('error', (err) => client.end(http1JsonAnswer(502, cannotReach(err))));
        out.end(signed?.body ?? body);
      },
      (err: Error) => client.end(http1JsonAnswer(400, dockerErrorBody(err.message))),
    );
  });
  return server;
}

export const connectCommand: Command = {
  summary: "serve NAME's Docker API on a local unix socket until stopped",
  usage: `dockfleet connect NAME --socket PATH [--key ID | --unsigned]

Then: DOCKER_HOST=unix://PATH docker ps   (or docker-compose, or any Docker SDK)

Every call is signed with your operator key (the default one, or --key ID; see
dockfleet operator-key), so hosts that require signed intent accept it. --unsigned sends
calls unsigned; such hosts then refuse changes.

${TARGET_HELP}`,
  async run(args) {
    const { values, positionals } = parseArgs({
      args,
      strict: true,
      allowPositionals: true,
      options: { ...TARGET_OPTIONS, socket: { type: 'string' }, key: { type: 'string' }, unsigned: { type: 'boolean' } },
    });
    if (positionals.length !== 1) throw new UsageError('expected exactly one NAME');
    if (!values.socket) throw new UsageError('--socket PATH is required');
    if (values.unsigned && values.key !== undefined) throw new UsageError('--key and --unsigned do not go together');
    const target = resolveTarget(values);
    const signer = values.unsigned ? null : loadOperatorSigner(values.key !== undefined ? { key: values.key } : {});
    if (signer === null) {
      process.stderr.write(
        values.unsigned
          ? 'dockfleet connect: --unsigned: calls go unsigned; hosts that require signed intent will refuse changes\n'
          : 'dockfleet connect: no operator key on this machine (see dockfleet operator-key create): calls go unsigned, and hosts that require signed intent will refuse changes\n',
      );
    }
    await clearStaleSocket(values.socket);
    const server = createConnectServer(target, positionals[0]!, { signer });
    await new Promise<void>((resolve, reject) => {
      server.once('error', reject);
      server.listen(values.socket, () => resolve());
    });
    await chmod(values.socket, 0o600);
    process.stdout.write(`serving node ${positionals[0]} on unix://${values.socket}${signer ? `, signing with ${signer.publicKey}` : ''}\n`);
    await untilSignal();
    server.close();
    server.closeAllConnections();
  },
};
