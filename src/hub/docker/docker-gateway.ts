/**
 * The Docker endpoints: every call is authenticated (client certificate or bearer token),
 * authorised for the user's role, routed to one node or the fleet, and, when it changes
 * something, written to the audit log with its outcome. Failures are Docker-format errors.
 */
import type { IncomingMessage, ServerResponse } from 'node:http';
import type { Duplex } from 'node:stream';
import { DOCKER_PREFIX, POLICY_REFUSAL_HEADER } from '../../protocol/docker-tunnel.ts';
import { DockfleetError, toDockfleetError } from '../../protocol/errors.ts';
import type { Logger } from '../../lib/logger.ts';
import { AuditLog, isMutating } from '../audit-log.ts';
import { assertDockerAllowed, type Principal, type Principals } from '../auth/principals.ts';
import type { NodeRegistry } from '../node-registry.ts';
import { writeDockerError, writeDockerErrorToSocket } from './docker-errors.ts';
import { parseDockerRoute, type DockerRoute } from './docker-route.ts';
import { answerFleet } from './fleet-proxy.ts';
import { hijackToNode } from './hijack-proxy.ts';
import { proxyToAgent } from './node-proxy.ts';

export interface DockerGatewayDeps {
  registry: NodeRegistry;
  principals: Principals;
  audit: AuditLog;
  log: Logger;
  fleetDeadlineMs?: number;
}

export class DockerGateway {
  readonly #deps: DockerGatewayDeps;
  readonly #fleetDeadlineMs: number;

  constructor(deps: DockerGatewayDeps) {
    this.#deps = deps;
    this.#fleetDeadlineMs = deps.fleetDeadlineMs ?? 3_000;
  }

  async #admit(req: IncomingMessage, hijack: boolean): Promise<{ route: DockerRoute; principal: Principal }> {
    const route = parseDockerRoute(req.url ?? '');
    if (!route) throw new DockfleetError('not_found', `no Docker endpoint at ${req.url}; use /docker/nodes/NAME/ or /docker/fleet/`);
    const principal = await this.#deps.principals.fromRequest(req, hijack);
    assertDockerAllowed(principal, req.method ?? 'GET', hijack);
    return { route, principal };
  }

  #audit(principal: Principal | null, route: DockerRoute | null, req: IncomingMessage, status: number, hijack: boolean): void {
    if (!principal || !(hijack || isMutating(req.method ?? 'GET'))) return;
    this.#deps.audit.record({
      user: principal.name,
      node: route?.kind === 'node' ? route.node : null,
      method: req.method ?? 'GET',
      path: route?.enginePath ?? req.url ?? '',
      status,
    });
  }

  async handleRequest(req: IncomingMessage, res: ServerResponse): Promise<void> {
    let principal: Principal | null = null;
    let route: DockerRoute | null = null;
    let status: number;
    try {
      ({ route, principal } = await this.#admit(req, false));
      status = route.kind === 'fleet'
        ? await answerFleet(this.#deps.registry, route.enginePath, req, res, this.#fleetDeadlineMs)
        : await proxyToAgent(this.#deps.registry.requireLink(route.node), `${DOCKER_PREFIX}${route.enginePath}`, req, res);
      if (res.getHeader(POLICY_REFUSAL_HEADER) !== undefined) this.#deps.log.info({ user: principal.name, node: route.kind === 'node' ? route.node : null }, 'call refused by host policy');
    } catch (err) {
      const e = toDockfleetError(err);
      if (e.code === 'internal') this.#deps.log.error({ err }, 'docker gateway failure');
      writeDockerError(res, e);
      status = e.status;
    }
    this.#audit(principal, route, req, status, false);
  }

  async handleUpgrade(req: IncomingMessage, socket: Duplex, head: Buffer): Promise<void> {
    let principal: Principal | null = null;
    let route: DockerRoute | null = null;
    let status: number;
    socket.on('error', () => {});
    try {
      ({ route, principal } = await this.#admit(req, true));
      if (route.kind !== 'node') throw new DockfleetError('not_found', 'attach and exec need a node: /docker/nodes/NAME/');
      status = await hijackToNode(this.#deps.registry.requireLink(route.node), route.enginePath, req, socket, head);
    } catch (err) {
      const e = toDockfleetError(err);
      if (e.code === 'internal') this.#deps.log.error({ err }, 'docker gateway hijack failure');
      writeDockerErrorToSocket(socket, e);
      status = e.status;
    }
    this.#audit(principal, route, req, status, true);
  }
}
