/**
 * Files given at deploy (env_file, secrets and configs contents), sent base64 by the CLI and
 * keyed by the path written in the Compose file.
 */
import { ValueError } from './compose-values.ts';

const BASE64 = /^[A-Za-z0-9+/]*={0,2}$/;
export const MAX_DEPLOY_FILE_BYTES = 1024 * 1024;

/** The file's bytes; null when it is absent and not required. */
export function decodeFile(files: Record<string, string>, name: string, required: boolean): Buffer | null {
  const encoded = Object.hasOwn(files, name) ? files[name] : undefined;
  if (encoded === undefined) {
    if (!required) return null;
    throw new ValueError(`file ${JSON.stringify(name)} was not given with the deploy`);
  }
  const compact = encoded.replace(/\s+/g, '');
  if (compact.length % 4 !== 0 || !BASE64.test(compact)) throw new ValueError(`file ${JSON.stringify(name)} is not valid base64`);
  const bytes = Buffer.from(compact, 'base64');
  if (bytes.length > MAX_DEPLOY_FILE_BYTES) throw new ValueError(`file ${JSON.stringify(name)} is larger than ${MAX_DEPLOY_FILE_BYTES} bytes`);
  return bytes;
}
