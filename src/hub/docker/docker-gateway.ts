/**
 * The Docker endpoints: every call is authenticated (client certificate or bearer token),
 * authorised for the user's role, counted against the user's cap on concurrent calls, routed
 * to one node or the fleet, and, when it changes something, audited: its intent is written
 * before the call is forwarded (or the call is refused: storage_full), its outcome after.
 * Failures are Docker-format errors.
 */
import type { IncomingMessage, ServerResponse } from 'node:http';
import type { Duplex } from 'node:stream';
import { DOCKER_PREFIX } from '../../protocol/docker-tunnel.ts';
import { DockfleetError, toDockfleetError } from '../../protocol/errors.ts';
import type { Logger } from '../../lib/logger.ts';
import { isMutating, type AuditCall, type AuditLog } from '../audit-log.ts';
import { assertDockerAllowed, type Principal, type Principals } from '../auth/principals.ts';
import type { NodeRegistry } from '../node-registry.ts';
import { writeDockerError, writeDockerErrorToSocket } from './docker-errors.ts';
import { parseDockerRoute, type DockerRoute } from './docker-route.ts';
import { answerFleet } from './fleet-proxy.ts';
import { hijackToNode } from './hijack-proxy.ts';
import { proxyToAgent } from './node-proxy.ts';
import { StreamCaps } from './stream-caps.ts';
import type { RegistryAuth } from '../registry-auth/registry-auth.ts';
import type { GatewayCall } from '../metrics/hub-metrics.ts';

export interface DockerGatewayDeps {
  registry: NodeRegistry;
  principals: Principals;
  audit: AuditLog;
  log: Logger;
  fleetDeadlineMs?: number;
  /** Shared with the terminal and volume files, so one user's cap covers them all. */
  caps?: StreamCaps;
  /** Stored registry credentials, set as X-Registry-Auth on a pull that names one. */
  registryAuth?: RegistryAuth;
  /** Counts each call as it ends (hub/metrics/). */
  metrics?: { gatewayCall(call: GatewayCall): void };
}

export class DockerGateway {
  readonly #deps: DockerGatewayDeps;
  readonly #fleetDeadlineMs: number;
  readonly #caps: StreamCaps;

  constructor(deps: DockerGatewayDeps) {
    this.#deps = deps;
    this.#fleetDeadlineMs = deps.fleetDeadlineMs ?? 3_000;
    this.#caps = deps.caps ?? new StreamCaps();
  }

  /** Who may do what where; then the intent (for a change) before anything is forwarded; then
   * a place under the user's cap. Returns how to end the call: its outcome and its place. */
  async #admit(req: IncomingMessage, hijack: boolean): Promise<{ route: DockerRoute; principal: Principal; auditRef: number | null; end: (status: number) => void }> {
    const route = parseDockerRoute(req.url ?? '');
    if (!route) throw new DockfleetError('not_found', `no Docker endpoint at ${req.url}; use /docker/nodes/NAME/ or /docker/fleet/`);
    const principal = await this.#deps.principals.fromRequest(req, hijack);
    assertDockerAllowed(principal, req.method ?? 'GET', hijack, route.kind === 'node' ? route.node : null);
    let call: AuditCall | null = null;
    if (hijack || isMutating(req.method ?? 'GET')) {
      call = await this.#deps.audit.begin({
        user: principal.name,
        node: route.kind === 'node' ? route.node : null,
        method: req.method ?? 'GET',
        path: route.enginePath,
      });
    }
    let release: () => void;
    try {
      release = this.#caps.acquire(principal.userId, principal.name);
    } catch (err) {
      call?.finish(toDockfleetError(err).status);
      throw err;
    }
    return {
      route,
      principal,
      auditRef: call?.id ?? null,
      end: (status) => {
        release();
        call?.finish(status);
      },
    };
  }

  async handleRequest(req: IncomingMessage, res: ServerResponse): Promise<void> {
    const startedAt = process.hrtime.bigint();
    let end: ((status: number) => void) | null = null;
    let status: number;
    let refusedByPolicy = false;
    try {
      const admitted = await this.#admit(req, false);
      end = admitted.end;
      const { route, principal, auditRef } = admitted;
      if (route.kind === 'fleet') {
        status = await answerFleet(this.#deps.registry, route.enginePath, req, res, this.#fleetDeadlineMs, (node) => principal.access.canSee(node));
      } else {
        await this.#deps.registryAuth?.applyToRequest(req.method ?? 'GET', route.enginePath, req.headers);
        const outcome = await proxyToAgent(this.#deps.registry.requireLink(route.node), `${DOCKER_PREFIX}${route.enginePath}`, req, res, { actor: principal.name, auditRef });
        status = outcome.status;
        refusedByPolicy = outcome.refusedByPolicy;
        if (outcome.refusedByPolicy) this.#deps.log.info({ user: principal.name, node: route.node, method: req.method, path: route.enginePath.split('?')[0] }, 'call refused by host policy');
      }
    } catch (err) {
      const e = toDockfleetError(err);
      if (e.code === 'internal') this.#deps.log.error({ err }, 'docker gateway failure');
      writeDockerError(res, e);
      status = e.status;
    }
    end?.(status);
    this.#deps.metrics?.gatewayCall({ url: req.url ?? '', status, startedAt, refusedByPolicy });
  }

  async handleUpgrade(req: IncomingMessage, socket: Duplex, head: Buffer): Promise<void> {
    const startedAt = process.hrtime.bigint();
    let end: ((status: number) => void) | null = null;
    let status: number;
    socket.on('error', () => {});
    try {
      const admitted = await this.#admit(req, true);
      end = admitted.end;
      const { route, principal, auditRef } = admitted;
      if (route.kind !== 'node') throw new DockfleetError('not_found', 'attach and exec need a node: /docker/nodes/NAME/');
      status = await hijackToNode(this.#deps.registry.requireLink(route.node), route.enginePath, req, socket, head, { actor: principal.name, auditRef });
    } catch (err) {
      const e = toDockfleetError(err);
      if (e.code === 'internal') this.#deps.log.error({ err }, 'docker gateway hijack failure');
      writeDockerErrorToSocket(socket, e);
      status = e.status;
    }
    this.#deps.metrics?.gatewayCall({ url: req.url ?? '', status, startedAt, refusedByPolicy: false });
    // A hijacked stream ends when its connection does: its place is held until then.
    if (status !== 101 || socket.destroyed || !end) return void end?.(status);
    const ended = end;
    socket.once('close', () => ended(status));
  }
}
