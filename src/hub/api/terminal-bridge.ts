/**
 * A shell in a container for the browser: a WebSocket on the hub, bridged to a TTY exec
 * session through the node's agent (exec create, then a hijacked exec start, exactly what
 * `docker exec -it` does, under the host's policy). Binary messages are terminal bytes both
 * ways; a text message {"type":"resize","cols":C,"rows":R} resizes the TTY. Output the
 * browser does not read fast enough pauses the exec stream instead of piling up.
 */
import type { IncomingMessage } from 'node:http';
import type http2 from 'node:http2';
import type { Duplex } from 'node:stream';
import { WebSocketServer, type WebSocket } from 'ws';
import { z } from 'zod';
import { BODY_LENGTH_HEADER, DOCKER_PREFIX, UPGRADED_HEADER, UPGRADE_HEADER } from '../../protocol/docker-tunnel.ts';
import { DockfleetError, toDockfleetError } from '../../protocol/errors.ts';
import { ACTOR_HEADER, AUDIT_REF_HEADER } from '../../protocol/intent.ts';
import { cancelUnlessDone } from '../../lib/h2-channel.ts';
import { http1JsonAnswer } from '../../lib/http1-head.ts';
import type { Logger } from '../../lib/logger.ts';
import { parseJsonLine } from '../../lib/ndjson.ts';
import type { AuditCall, AuditLog } from '../audit-log.ts';
import { assertDockerAllowed, type Principals } from '../auth/principals.ts';
import type { NodeLink } from '../node-registry.ts';
import type { NodeRegistry } from '../node-registry.ts';
import type { StreamCaps } from '../docker/stream-caps.ts';

const TERMINAL_PATH = /^\/api\/v1\/nodes\/([a-z0-9][a-z0-9-]{0,62})\/containers\/([A-Za-z0-9][A-Za-z0-9_.-]{0,127})\/terminal$/;
const HIGH_WATER = 1024 * 1024;
const resizeMessage = z.object({ type: z.literal('resize'), cols: z.number().int().min(1).max(1000), rows: z.number().int().min(1).max(1000) });
const terminalQuery = z.object({
  cols: z.coerce.number().int().min(1).max(1000).default(80),
  rows: z.coerce.number().int().min(1).max(1000).default(24),
  cmd: z
    .string()
    .min(1)
    .max(200)
    .regex(/^[^\0]+$/)
    .default('/bin/sh'),
});

/** A browser always sends Origin on a WebSocket: it must be this hub's own https origin,
 * exactly (scheme, host and port), never `null` or http://. A tool that is not a browser sends
 * none and proves itself with a token; a session cookie without Origin is refused later. */
export function assertOwnOrigin(origin: string | undefined, host: string | undefined): void {
  if (origin === undefined) return;
  let own: string | null = null;
  try {
    own = host ? new URL(`https://${host}`).origin : null;
  } catch {
    own = null;
  }
  if (own === null || origin !== own) throw new DockfleetError('forbidden', "the terminal opens only from this hub's own https origin");
}

export function isTerminalPath(url: string): boolean {
  return TERMINAL_PATH.test(url.split('?')[0] ?? '');
}

export interface TerminalDeps {
  registry: NodeRegistry;
  principals: Principals;
  audit: AuditLog;
  log: Logger;
  /** A terminal session holds one of its user's places until it closes. */
  caps: StreamCaps;
}

export class TerminalBridge {
  readonly #wss = new WebSocketServer({ noServer: true, perMessageDeflate: false, maxPayload: 64 * 1024 });
  readonly #deps: TerminalDeps;

  constructor(deps: TerminalDeps) {
    this.#deps = deps;
  }

  /** Open terminal sessions (metrics). */
  get sessionCount(): number {
    return this.#wss.clients.size;
  }

  async handleUpgrade(req: IncomingMessage, socket: Duplex, head: Buffer): Promise<void> {
    socket.on('error', () => {});
    const url = new URL(req.url ?? '/', 'https://hub.invalid');
    const [, node, container] = TERMINAL_PATH.exec(url.pathname) ?? [];
    let execId: string;
    let link: NodeLink;
    let query: z.infer<typeof terminalQuery>;
    let call: AuditCall | null = null;
    let release: (() => void) | null = null;
    let principalName = '';
    try {
      assertOwnOrigin(req.headers.origin, req.headers.host);
      const principal = await this.#deps.principals.fromRequest(req, true);
      principalName = principal.name;
      assertDockerAllowed(principal, 'POST', true, node!);
      const parsed = terminalQuery.safeParse(Object.fromEntries(url.searchParams));
      if (!parsed.success) throw new DockfleetError('validation_failed', 'cols, rows and cmd must be valid');
      query = parsed.data;
      // The session is audited before anything runs in the container (or refused: storage_full).
      call = await this.#deps.audit.begin({ user: principal.name, node: node!, method: 'POST', path: `/containers/${container}/exec (terminal)` });
      release = this.#deps.caps.acquire(principal.userId, principal.name);
      link = this.#deps.registry.requireLink(node!);
      const created = await link.requestJson({
        method: 'POST',
        path: `${DOCKER_PREFIX}/containers/${encodeURIComponent(container!)}/exec`,
        headers: { 'content-type': 'application/json', [ACTOR_HEADER]: principal.name, [AUDIT_REF_HEADER]: String(call.id) },
        body: Buffer.from(
          JSON.stringify({
            AttachStdin: true,
            AttachStdout: true,
            AttachStderr: true,
            Tty: true,
            Cmd: [query.cmd],
            Env: ['TERM=xterm-256color'],
            ConsoleSize: [query.rows, query.cols],
          }),
        ),
        timeoutMs: 10_000,
      });
      if (created.status !== 201) throw new DockfleetError('bad_request', (created.body as { message?: string } | null)?.message ?? `exec create failed (${created.status})`);
      execId = String((created.body as { Id: unknown }).Id);
    } catch (err) {
      const e = toDockfleetError(err);
      release?.();
      call?.finish(e.status);
      socket.end(http1JsonAnswer(e.status, JSON.stringify(e.toJSON())));
      return;
    }
    // The session's place and outcome end with its connection, however it ends.
    const session = call;
    socket.once('close', () => {
      release?.();
      session.finish(101);
    });
    const origin = { [ACTOR_HEADER]: principalName, [AUDIT_REF_HEADER]: String(session.id) };
    this.#wss.handleUpgrade(req, socket, head, (ws) => this.#bridge(ws, link, execId, query, origin));
  }

  /** `origin`: who the hub says is asking, for the host's audit log (never trusted there for access). */
  #bridge(ws: WebSocket, link: NodeLink, execId: string, size: { cols: number; rows: number }, origin: Record<string, string>): void {
    const body = Buffer.from(JSON.stringify({ Detach: false, Tty: true, ConsoleSize: [size.rows, size.cols] }));
    let stream: http2.ClientHttp2Stream;
    try {
      stream = link.openStream(
        {
          ':method': 'POST',
          ':path': `${DOCKER_PREFIX}/exec/${execId}/start`,
          'content-type': 'application/json',
          [UPGRADE_HEADER]: 'tcp',
          [BODY_LENGTH_HEADER]: String(body.length),
          ...origin,
        },
        { endStream: false },
      );
    } catch (err) {
      return ws.close(1011, toDockfleetError(err).message.slice(0, 120));
    }
    stream.write(body);
    stream.once('response', (headers) => {
      if (headers[UPGRADED_HEADER] === undefined) {
        stream.close();
        return ws.close(1011, `exec refused (${headers[':status']})`);
      }
      stream.on('data', (chunk: Buffer) => {
        ws.send(chunk, { binary: true });
        if (ws.bufferedAmount > HIGH_WATER) {
          stream.pause();
          const resume = setInterval(() => {
            if (ws.bufferedAmount < HIGH_WATER / 2 || ws.readyState !== ws.OPEN) {
              clearInterval(resume);
              stream.resume();
            }
          }, 20);
        }
      });
      stream.once('end', () => ws.close(1000, 'session ended'));
    });
    stream.on('error', () => ws.close(1011, 'the node went away'));
    ws.on('message', (data, isBinary) => {
      const buf = Array.isArray(data) ? Buffer.concat(data) : Buffer.from(data as Buffer);
      if (!isBinary) {
        const parsed = parseJsonLine(buf.toString('utf8'));
        const resize = parsed.ok ? resizeMessage.safeParse(parsed.value) : null;
        if (resize?.success) {
          void link.request({ method: 'POST', path: `${DOCKER_PREFIX}/exec/${execId}/resize?h=${resize.data.rows}&w=${resize.data.cols}`, timeoutMs: 5_000 }).then(
            (r) => r.stream.resume(),
            () => {},
          );
          return;
        }
      }
      stream.write(buf);
    });
    ws.once('close', () => cancelUnlessDone(stream));
    ws.on('error', () => {});
  }
}
