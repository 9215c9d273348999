/**
 * A node's agent as seen from a replica that does not hold it (issue 17): the same calls as an
 * AgentLink (request, requestJson, openStream), carried as streams on the peer session to the
 * replica that holds the agent, each naming the node and the ownership epoch this replica
 * believes in. The holder checks that epoch (fencing) before anything reaches the agent; its
 * refusal (421) becomes "node offline" here, never an answer from the wrong replica.
 */
import type { ClientHttp2Session, ClientHttp2Stream, IncomingHttpHeaders } from 'node:http2';
import { DockfleetError } from '../../protocol/errors.ts';
import type { AgentResponse, LinkRequest } from '../gateway/agent-link.ts';
import { LinkQos } from '../gateway/link-qos.ts';
import { requestJsonOver, requestOver, type OpenStream } from '../gateway/link-requests.ts';
import { PEER_EPOCH_HEADER, PEER_NODE_HEADER, PEER_REFUSED_HEADER } from './peer-protocol.ts';

export class RemoteLink {
  readonly nodeId: string;
  readonly nodeName: string;
  readonly epoch: number;
  /** Interactive calls first, as on a local link (this replica's calls to the node, through its holder). */
  readonly qos = new LinkQos();
  readonly #session: ClientHttp2Session;

  constructor(opts: { session: ClientHttp2Session; nodeId: string; nodeName: string; epoch: number }) {
    this.#session = opts.session;
    this.nodeId = opts.nodeId;
    this.nodeName = opts.nodeName;
    this.epoch = opts.epoch;
  }

  get closed(): boolean {
    return this.#session.closed || this.#session.destroyed;
  }

  readonly #open: OpenStream = (headers, opts) => {
    if (this.closed) throw new DockfleetError('node_offline', `node ${this.nodeName}: the replica holding it is gone`);
    try {
      return this.#session.request({ ...headers, [PEER_NODE_HEADER]: this.nodeName, [PEER_EPOCH_HEADER]: String(this.epoch) }, opts);
    } catch (err) {
      throw new DockfleetError('node_offline', `node ${this.nodeName}: the replica holding it is going away: ${(err as Error).message}`, { cause: err });
    }
  };

  /** A raw stream to the agent, through its holder (the Docker gateway pipes bytes through it). */
  openStream(headers: Record<string, string | string[]>, opts: { endStream: boolean }): ClientHttp2Stream {
    return this.#open(headers, opts);
  }

  /** A replica's refusal (421 with PEER_REFUSED_HEADER) is never taken for the agent's answer. */
  readonly #check = (headers: IncomingHttpHeaders): void => {
    const refused = headers[PEER_REFUSED_HEADER];
    if (refused !== undefined) throw new DockfleetError('node_offline', `node ${this.nodeName} is not held where this replica thought (${String(refused)}); try again`);
  };

  request(req: LinkRequest): Promise<AgentResponse> {
    return requestOver(this.#open, this.nodeName, req, this.#check);
  }

  requestJson(req: LinkRequest & { maxBytes?: number }): Promise<{ status: number; body: unknown }> {
    return requestJsonOver(this.#open, this.nodeName, req, this.#check);
  }
}
