/** Replaces a job's secret values with `[secret]` in whatever text the hub keeps about it
 * (log lines, errors), in case an agent lets one through. Short values (under 4 characters)
 * are left alone: redacting every "1" would make logs unreadable and protect nothing. */
import type { JobSecrets } from './job-queue.ts';

const MIN_LENGTH = 4;
const MAX_FILE_TEXT = 64 * 1024;

export type Redactor = (text: string) => string;

export function secretRedactor(secrets: JobSecrets): Redactor {
  const values = new Set<string>();
  for (const v of Object.values(secrets.env)) if (v.length >= MIN_LENGTH) values.add(v);
  for (const b64 of Object.values(secrets.files)) {
    const text = Buffer.from(b64, 'base64').toString('utf8').trim();
    if (text.length >= MIN_LENGTH && text.length <= MAX_FILE_TEXT) values.add(text);
    for (const line of text.split('\n')) if (line.trim().length >= 8) values.add(line.trim());
  }
  if (values.size === 0) return (text) => text;
  // Longest first, so a value that contains another is replaced whole.
  const sorted = [...values].sort((a, b) => b.length - a.length);
  return (text) => {
    let out = text;
    for (const v of sorted) if (out.includes(v)) out = out.split(v).join('[secret]');
    return out;
  };
}
