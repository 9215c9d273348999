/**
 * What replicas say to each other on a peer link (issue 17): a stream for one node's agent names
 * the node and the ownership epoch the sender believes in; every other header, the method, the
 * path and the body are the agent call itself. A holder that no longer holds that epoch (or
 * never did) answers 421 with PEER_REFUSED_HEADER and a Docker-style error body, so the sender
 * tells a replica's refusal from anything an agent says.
 */
export const PEER_NODE_HEADER = 'dockfleet-peer-node';
export const PEER_EPOCH_HEADER = 'dockfleet-peer-epoch';
export const PEER_REFUSED_HEADER = 'dockfleet-peer-refused';
/** HTTP 421 Misdirected Request: the right place for this call is another replica (or none). */
export const PEER_REFUSED_STATUS = 421;

export type PeerRefusal = 'node_moved' | 'node_offline' | 'bad_request';

/** The replica's own headers, which never reach an agent. */
export function isPeerHeader(name: string): boolean {
  return name === PEER_NODE_HEADER || name === PEER_EPOCH_HEADER;
}
