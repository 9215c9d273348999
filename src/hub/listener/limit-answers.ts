/** The answers the connection guard writes on a raw socket, in the form the caller reads:
 * Docker's `{"message": "… [code]"}` on /docker/ URLs, dockfleet's error body elsewhere. */
import type { IncomingMessage } from 'node:http';
import { http1Head } from '../../lib/http1-head.ts';
import { dockerErrorBody } from '../../protocol/docker-tunnel.ts';
import { GATEWAY_PATH } from '../../protocol/handshake.ts';
import { DockfleetError } from '../../protocol/errors.ts';
import { isDockerUrl } from '../docker/docker-route.ts';

function answer(url: string, err: DockfleetError, retryAfterS?: number): string {
  const body = isDockerUrl(url) ? dockerErrorBody(`${err.message} [${err.code}]`) : JSON.stringify(err.toJSON());
  return (
    http1Head(err.status, {
      'content-type': 'application/json',
      'content-length': Buffer.byteLength(body),
      'x-dockfleet-error': err.code,
      'retry-after': retryAfterS,
      connection: 'close',
    }) + body
  );
}

export function bodyStalledAnswer(req: IncomingMessage, stalledMs: number): string {
  const seconds = Math.round(stalledMs / 1000);
  return answer(req.url ?? '', new DockfleetError('body_stalled', `the request body stopped arriving (no byte for ${seconds} s)`));
}

/** Agents retry it no sooner than its Retry-After: a link may free up (a host replaced, a cap raised). */
export const AGENT_LINKS_FULL_ANSWER = answer(GATEWAY_PATH, new DockfleetError('rate_limited', 'too many agent links from this address; see the hub flag --max-agent-links-per-address'), 30);

export function isAgentUpgrade(req: IncomingMessage): boolean {
  return (req.url ?? '').split('?')[0] === GATEWAY_PATH;
}
