/**
 * The edge's way to a container: the hub opens one HTTP/2 stream per client connection to the
 * agent at EDGE_DIAL_PATH?container=ID&port=P. The agent connects to that container's address on
 * its own host and answers 200; from then on the stream carries the raw TCP bytes both ways.
 * Any other answer is a refusal with a JSON `{ reason }` body and EDGE_DIAL_REASON_HEADER.
 */
export const EDGE_DIAL_PATH = '/_dockfleet/v1/edge/dial';
/**
 * Why the agent did not connect: `no_container`, `not_running`, `no_address`, `connect_failed`,
 * `port_not_published` (the container's own labels do not publish that port), `policy` (this
 * host's policy turns `ingress` off).
 */
export const EDGE_DIAL_REASON_HEADER = 'x-dockfleet-dial-reason';
export type EdgeDialRefusal = 'bad_request' | 'no_container' | 'not_running' | 'no_address' | 'connect_failed' | 'port_not_published' | 'policy';

const CONTAINER_ID = /^[a-f0-9]{12,64}$/;

export function edgeDialPath(containerId: string, port: number): string {
  return `${EDGE_DIAL_PATH}?container=${encodeURIComponent(containerId)}&port=${port}`;
}

/** The container id and port of a dial path, or null when either is malformed. */
export function parseEdgeDial(url: string): { containerId: string; port: number } | null {
  const q = new URLSearchParams(url.split('?')[1] ?? '');
  const containerId = q.get('container') ?? '';
  const portText = q.get('port') ?? '';
  if (!CONTAINER_ID.test(containerId) || !/^[1-9][0-9]{0,4}$/.test(portText)) return null;
  const port = Number(portText);
  return port <= 65535 ? { containerId, port } : null;
}
