/**
 * The agent's upgrade endpoints on its channel. POST AGENT_UPGRADE_PATH?to=V carries the package
 * (body) and its signature document (header); the agent stages it (stage-release.ts), answers, and
 * then asks its launcher to switch. GET AGENT_UPGRADE_RESULT_PATH tells the hub how the last switch
 * ended: after a rollback the old version is the one that says why.
 */
import type { Http2ServerRequest, Http2ServerResponse } from 'node:http2';
import type { Logger } from '../../lib/logger.ts';
import { readBounded } from '../../lib/read-bounded.ts';
import { AGENT_UPGRADE_PATH, AGENT_UPGRADE_RESULT_PATH, MAX_RELEASE_BYTES, RELEASE_SIGNATURE_HEADER, releaseVersionSchema } from '../../protocol/releases.ts';
import type { TunnelHandler } from '../tunnel-handler.ts';
import { stageRelease } from './stage-release.ts';
import { UpgradeFiles } from './upgrade-files.ts';

/** How long a new version has to connect before the launcher goes back (a test knob may shorten it). */
export const DEFAULT_TRIAL_MS = 60_000;

/** The trial: 60 s, or DOCKFLEET_UPGRADE_TRIAL_MS (tests shorten it). */
export function trialMsFromEnv(env: NodeJS.ProcessEnv = process.env): number {
  const raw = env.DOCKFLEET_UPGRADE_TRIAL_MS;
  const n = raw === undefined ? NaN : Number(raw);
  return Number.isInteger(n) && n > 0 ? n : DEFAULT_TRIAL_MS;
}

function answer(res: Http2ServerResponse, status: number, body: unknown): void {
  const text = JSON.stringify(body);
  res.writeHead(status, { 'content-type': 'application/json', 'content-length': Buffer.byteLength(text) });
  res.end(text);
}

/** Whether a launcher runs this agent (and can switch it to another version). */
export function underLauncher(): boolean {
  return process.env.DOCKFLEET_AGENT_CHILD === '1' && typeof process.send === 'function';
}

export function withUpgrades(stateDir: string, log: Logger, handler: TunnelHandler, trialMs = trialMsFromEnv()): TunnelHandler {
  const files = new UpgradeFiles(stateDir);
  let busy = false;
  return (req: Http2ServerRequest, res: Http2ServerResponse) => {
    const [path, query] = req.url.split('?') as [string, string | undefined];
    if (req.method === 'GET' && path === AGENT_UPGRADE_RESULT_PATH) {
      void files.result().then((r) => (r === null ? answer(res, 404, { error: { code: 'not_found', message: 'no upgrade was tried here' } }) : answer(res, 200, r)));
      return;
    }
    if (req.method !== 'POST' || path !== AGENT_UPGRADE_PATH) return handler(req, res);
    void (async () => {
      const to = releaseVersionSchema.safeParse(new URLSearchParams(query ?? '').get('to'));
      const refuse = (reason: string): void => {
        log.warn({ reason }, 'upgrade refused');
        answer(res, 422, { error: { code: 'upgrade_refused', message: reason } });
      };
      if (!to.success) return refuse('no valid version named (?to=)');
      if (!underLauncher()) return refuse('this agent runs without its launcher, so it cannot switch versions');
      if (busy) return refuse('an upgrade is already under way on this host');
      busy = true;
      try {
        let signature: unknown;
        try {
          signature = JSON.parse(Buffer.from(String(req.headers[RELEASE_SIGNATURE_HEADER] ?? ''), 'base64url').toString('utf8'));
        } catch {
          return refuse('the release signature is malformed');
        }
        const pkg = await readBounded(req as AsyncIterable<Buffer>, MAX_RELEASE_BYTES);
        if (pkg === null) return refuse('the release package is too large');
        const staged = await stageRelease(files, pkg, signature, to.data, trialMs);
        if (!staged.ok) return refuse(staged.reason);
        log.info({ from: staged.from, to: staged.to }, 'release verified and installed; switching to it');
        res.once('finish', () => process.send?.({ t: 'switch' }));
        answer(res, 202, { from: staged.from, to: staged.to });
      } finally {
        busy = false;
      }
    })().catch((err: unknown) => {
      log.error({ err }, 'upgrade failed');
      if (!res.headersSent) answer(res, 500, { error: { code: 'internal', message: 'upgrade failed on the agent' } });
    });
  };
}
