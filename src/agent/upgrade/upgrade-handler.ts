/**
 * The agent's upgrade endpoints on its channel. POST AGENT_UPGRADE_PATH?to=V carries the package
 * (body) and its signature document (header); the agent stages it (stage-release.ts), answers, and
 * then asks its launcher to switch. GET AGENT_UPGRADE_RESULT_PATH tells the hub how the last switch
 * ended: after a rollback the old version is the one that says why.
 * The same version asked for again (a hub that died after sending it, resending once it is back)
 * is staged once: a request that arrives while it is being staged gets that staging's answer, and
 * one that arrives after gets the same 202, without a second switch.
 */
import type { Http2ServerRequest, Http2ServerResponse } from 'node:http2';
import type { Logger } from '../../lib/logger.ts';
import { readBounded } from '../../lib/read-bounded.ts';
import { AGENT_UPGRADE_PATH, AGENT_UPGRADE_RESULT_PATH, MAX_RELEASE_BYTES, RELEASE_SIGNATURE_HEADER, releaseVersionSchema } from '../../protocol/releases.ts';
import type { TunnelHandler } from '../tunnel-handler.ts';
import { stageRelease, type StageOutcome } from './stage-release.ts';
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

/** Whether `p` has not settled yet (checked without waiting for it). */
async function isUnsettled(p: Promise<unknown>): Promise<boolean> {
  const pending = Symbol('pending');
  return (
    (await Promise.race([
      p.then(
        () => null,
        () => null,
      ),
      Promise.resolve(pending),
    ])) === pending
  );
}

export function withUpgrades(stateDir: string, log: Logger, handler: TunnelHandler, trialMs = trialMsFromEnv()): TunnelHandler {
  const files = new UpgradeFiles(stateDir);
  /** The staging under way, or the last one that succeeded (its switch is on its way). */
  let staging: { to: string; outcome: Promise<StageOutcome> } | null = null;
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
      const again = staging?.to === to.data ? staging.outcome : null;
      if (again) {
        req.resume(); // the bytes were staged once already
        const outcome = await again;
        if (!outcome.ok) return refuse(outcome.reason);
        log.info({ to: outcome.to }, 'release asked for again while it is being installed; answered once more');
        return answer(res, 202, { from: outcome.from, to: outcome.to });
      }
      if (staging !== null && (await isUnsettled(staging.outcome))) return refuse('an upgrade is already under way on this host');
      let signature: unknown;
      try {
        signature = JSON.parse(Buffer.from(String(req.headers[RELEASE_SIGNATURE_HEADER] ?? ''), 'base64url').toString('utf8'));
      } catch {
        return refuse('the release signature is malformed');
      }
      const outcome = (async (): Promise<StageOutcome> => {
        const pkg = await readBounded(req as AsyncIterable<Buffer>, MAX_RELEASE_BYTES);
        if (pkg === null) return { ok: false, reason: 'the release package is too large' };
        return stageRelease(files, pkg, signature, to.data, trialMs);
      })().catch((err: Error): StageOutcome => ({ ok: false, reason: `the release did not arrive whole: ${err.message}` }));
      const mine = { to: to.data, outcome };
      staging = mine;
      const staged = await outcome;
      // A failed staging is forgotten (the next request tries afresh); a successful one is kept: this process is about to be replaced.
      if (!staged.ok) {
        if (staging === mine) staging = null;
        return refuse(staged.reason);
      }
      log.info({ from: staged.from, to: staged.to }, 'release verified and installed; switching to it');
      // Switch once the answer is out, or once the hub is gone without it (a hub killed after
      // sending the release): the release is staged either way, and the hub sees the new version.
      let switched = false;
      const switchNow = (): void => {
        if (switched) return;
        switched = true;
        process.send?.({ t: 'switch' });
      };
      // (Its stream may have closed already, while the release was being staged.)
      if (res.stream.closed || res.stream.destroyed) {
        switchNow();
        return;
      }
      res.once('finish', switchNow);
      res.once('close', switchNow);
      answer(res, 202, { from: staged.from, to: staged.to });
    })().catch((err: unknown) => {
      log.error({ err }, 'upgrade failed');
      if (!res.headersSent) answer(res, 500, { error: { code: 'internal', message: 'upgrade failed on the agent' } });
    });
  };
}
