/** Where a /docker/… request goes: one node's engine API, or the fleet's merged lists. */
export type DockerRoute = { kind: 'node'; node: string; enginePath: string } | { kind: 'fleet'; enginePath: string };

const NODE_ROUTE = /^\/docker\/nodes\/([a-z0-9][a-z0-9-]{0,62})(\/[^?#]*)?(\?.*)?$/;
const FLEET_ROUTE = /^\/docker\/fleet(\/[^?#]*)?(\?.*)?$/;

/** Parses the request URL; null for anything that is not a Docker route. The engine path
 * keeps the client's API version prefix and query string unchanged. */
export function parseDockerRoute(url: string): DockerRoute | null {
  const node = NODE_ROUTE.exec(url);
  if (node) return { kind: 'node', node: node[1]!, enginePath: `${node[2] ?? '/'}${node[3] ?? ''}` };
  const fleet = FLEET_ROUTE.exec(url);
  if (fleet) return { kind: 'fleet', enginePath: `${fleet[1] ?? '/'}${fleet[2] ?? ''}` };
  return null;
}

export function isDockerUrl(url: string): boolean {
  return url === '/docker' || url.startsWith('/docker/');
}
