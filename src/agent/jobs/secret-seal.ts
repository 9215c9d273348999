/**
 * A job's secret part at rest on the host: AES-256-GCM under a key derived from the agent's own
 * private key (HKDF, identity.ts), bound to the job's id. Sealing lets an agent that was killed
 * mid-deploy finish the job on its next start, before the hub is reachable, without ever
 * writing a secret in plaintext. A blob sealed under a key that has since rotated cannot be
 * opened: that job waits for the hub's next delivery, which carries the secrets again.
 */
import { createCipheriv, createDecipheriv, randomBytes } from 'node:crypto';
import { z } from 'zod';
import type { JobRequest } from '../../protocol/jobs.ts';

export type JobSecrets = JobRequest['secrets'];

export const sealedSecrets = z.strictObject({
  keyId: z.string(),
  iv: z.string(),
  tag: z.string(),
  data: z.string(),
});
export type SealedSecrets = z.infer<typeof sealedSecrets>;

const jobSecrets = z.strictObject({ env: z.record(z.string(), z.string()), files: z.record(z.string(), z.string()) });

/** The part of AgentIdentity the seal needs. */
export interface StateKeySource {
  readonly keyId: string;
  deriveStateKey(purpose: string): Buffer;
}

const PURPOSE = 'job secrets';

export class SecretSeal {
  readonly #keys: StateKeySource;

  constructor(keys: StateKeySource) {
    this.#keys = keys;
  }

  seal(jobId: string, secrets: JobSecrets): SealedSecrets {
    const iv = randomBytes(12);
    const cipher = createCipheriv('aes-256-gcm', this.#keys.deriveStateKey(PURPOSE), iv);
    cipher.setAAD(Buffer.from(jobId));
    const data = Buffer.concat([cipher.update(JSON.stringify(secrets), 'utf8'), cipher.final()]);
    return { keyId: this.#keys.keyId, iv: iv.toString('base64'), tag: cipher.getAuthTag().toString('base64'), data: data.toString('base64') };
  }

  /** The secrets, or null when they were sealed under another key or the blob was altered. */
  open(jobId: string, sealed: SealedSecrets): JobSecrets | null {
    if (sealed.keyId !== this.#keys.keyId) return null;
    try {
      const decipher = createDecipheriv('aes-256-gcm', this.#keys.deriveStateKey(PURPOSE), Buffer.from(sealed.iv, 'base64'));
      decipher.setAAD(Buffer.from(jobId));
      decipher.setAuthTag(Buffer.from(sealed.tag, 'base64'));
      const plain = Buffer.concat([decipher.update(Buffer.from(sealed.data, 'base64')), decipher.final()]).toString('utf8');
      const parsed = jobSecrets.safeParse(JSON.parse(plain));
      return parsed.success ? parsed.data : null;
    } catch {
      return null;
    }
  }
}
