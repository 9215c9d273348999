/**
 * The upgrade endpoint of a simulated agent (bench/agent-simulator.ts): it reads the package the
 * hub sends, checks it against the pinned release key exactly as a real agent does
 * (src/lib/release-keys.ts), answers 202, and then asks its fleet to restart it on the new version
 * (the channel drops and comes back after a fixed restart time). A refused release gets the
 * agent's error form. Nothing is unpacked or run.
 */
import type { Http2ServerRequest, Http2ServerResponse } from 'node:http2';
import { verifyRelease } from '../../src/lib/release-keys.ts';
import { AGENT_UPGRADE_PATH, MAX_RELEASE_BYTES, RELEASE_SIGNATURE_HEADER } from '../../src/protocol/releases.ts';

export interface SimulatedUpgradeOptions {
  /** The pinned release key (`ed25519:…`). */
  releaseKey: string;
  /** How long a simulated restart keeps the agent away (fixed). */
  restartMs: number;
}

function answer(res: Http2ServerResponse, status: number, body: unknown): void {
  const text = JSON.stringify(body);
  res.writeHead(status, { 'content-type': 'application/json', 'content-length': Buffer.byteLength(text) });
  res.end(text);
}

/** Handles POST AGENT_UPGRADE_PATH (true) or leaves the request alone (false); `accepted` runs once the 202 is sent. */
export function simulatedUpgradeHandler(opts: SimulatedUpgradeOptions, accepted: (version: string) => void): (req: Http2ServerRequest, res: Http2ServerResponse) => boolean {
  return (req, res) => {
    const url = new URL(req.url, 'http://agent');
    if (url.pathname !== AGENT_UPGRADE_PATH || req.method !== 'POST') return false;
    const to = url.searchParams.get('to') ?? '';
    const chunks: Buffer[] = [];
    let size = 0;
    req.on('data', (c: Buffer) => {
      size += c.length;
      if (size <= MAX_RELEASE_BYTES) chunks.push(c);
    });
    req.on('end', () => {
      let signature: unknown = null;
      try {
        signature = JSON.parse(Buffer.from(String(req.headers[RELEASE_SIGNATURE_HEADER] ?? ''), 'base64url').toString('utf8'));
      } catch {
        // Judged (and refused) by verifyRelease below.
      }
      const check = size > MAX_RELEASE_BYTES ? { ok: false as const, reason: 'the package is too large' } : verifyRelease(Buffer.concat(chunks), signature, opts.releaseKey, to);
      if (!check.ok) return answer(res, 422, { error: { code: 'release_unsigned', message: check.reason } });
      res.on('finish', () => accepted(check.manifest.version));
      answer(res, 202, { accepted: check.manifest.version });
    });
    return true;
  };
}
