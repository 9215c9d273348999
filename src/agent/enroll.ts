/** First contact: verify the hub against the code's CA digest, send our public key, and keep
 * the pinned CA and our private key in --state. Nothing is written unless the hub accepts. */
import http from 'node:http';
import { enrolled } from '../protocol/api.ts';
import { DockfleetError, isErrorCode } from '../protocol/errors.ts';
import { parseCode } from '../protocol/enrollment-code.ts';
import { parseJsonLine } from '../lib/ndjson.ts';
import { dialHub } from './hub-dialer.ts';
import { AgentIdentity } from './identity.ts';
import { UpgradeFiles } from './upgrade/upgrade-files.ts';

export async function enrollAgent(opts: { hubUrl: URL; code: string; name?: string | undefined; stateDir: string }): Promise<AgentIdentity> {
  const code = parseCode(opts.code);
  const { socket, caPem } = await dialHub(opts.hubUrl, { caDigest: code.caDigest });
  const key = AgentIdentity.newKey();
  const payload = Buffer.from(JSON.stringify({ code: opts.code, publicKey: key.publicKeyPem, ...(opts.name ? { name: opts.name } : {}) }));
  const { status, body } = await new Promise<{ status: number; body: unknown }>((resolve, reject) => {
    const req = http.request(
      {
        createConnection: () => socket,
        method: 'POST',
        path: '/api/v1/enroll',
        headers: { host: opts.hubUrl.host, 'content-type': 'application/json', 'content-length': payload.length, connection: 'close' },
        timeout: 15_000,
      },
      (res) => {
        const chunks: Buffer[] = [];
        res.on('data', (c: Buffer) => chunks.push(c));
        res.on('end', () => {
          const parsed = parseJsonLine(Buffer.concat(chunks).toString('utf8'));
          resolve({ status: res.statusCode ?? 0, body: parsed.ok ? parsed.value : null });
        });
        res.on('error', reject);
      },
    );
    req.on('timeout', () => req.destroy(new DockfleetError('hub_unreachable', 'hub did not answer the enrollment in time')));
    req.on('error', reject);
    req.end(payload);
  });
  socket.destroy();
  if (status !== 201) {
    const error = (body as { error?: { code?: unknown; message?: unknown } } | null)?.error;
    const errCode = isErrorCode(error?.code) ? error.code : 'internal';
    throw new DockfleetError(errCode, typeof error?.message === 'string' ? error.message : `hub answered ${status}`);
  }
  const result = enrolled.parse(body);
  const identity = await AgentIdentity.save(opts.stateDir, { hubUrl: opts.hubUrl.href, node: result.name, caPem }, key.privateKeyPem);
  // Pinned once, here: a later hub cannot swap the key that signs the code this host runs.
  if (result.releaseKey !== undefined) await new UpgradeFiles(opts.stateDir).pinReleaseKey(result.releaseKey);
  return identity;
}
