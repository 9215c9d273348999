/**
 * Replaces every secret value of one job with `[secret]` in what the job writes for people
 * (log lines, step names, its error). It knows the secret environment values, each secret
 * file's contents and each of its lines, and the base64 forms they travelled in. Longer values
 * are replaced first, so a value that contains another is not left half-shown.
 */
import type { JobSecrets } from './secret-seal.ts';

export const REDACTED = '[secret]';
/** File lines shorter than this are too common ("}", "true") to be told from ordinary text. */
const MIN_FILE_LINE = 6;

export class SecretRedactor {
  readonly #values: string[];

  constructor(secrets: JobSecrets) {
    const values = new Set<string>();
    for (const value of Object.values(secrets.env)) if (value !== '') values.add(value);
    for (const encoded of Object.values(secrets.files)) {
      if (encoded !== '') values.add(encoded);
      const text = Buffer.from(encoded, 'base64').toString('utf8');
      if (text.trim() !== '') values.add(text);
      for (const line of text.split(/\r?\n/)) if (line.trim().length >= MIN_FILE_LINE) values.add(line.trim());
    }
    this.#values = [...values].sort((a, b) => b.length - a.length);
  }

  redact(text: string): string {
    let out = text;
    for (const value of this.#values) if (out.includes(value)) out = out.split(value).join(REDACTED);
    return out;
  }
}
