/**
 * Request shapes for the volume-files endpoint. The query string is decoded exactly once, by
 * URLSearchParams, and each parameter may appear once: `path=a&path=../b` is refused rather than
 * letting two layers pick different ones.
 */
import { z } from 'zod';
import { MAX_PATH_BYTES } from './volume-path.ts';
import { VolumeFileError } from './volume-file-error.ts';

/** Largest POST body (a JSON op). */
export const MAX_OP_BODY = 64 * 1024;

const flag = z.enum(['0', '1', 'true', 'false']).transform((v) => v === '1' || v === 'true');

export const volumeFilesQuery = z.strictObject({
  /** Volume-relative; absent or empty means the volume root. */
  path: z.string().max(MAX_PATH_BYTES).optional(),
  download: flag.optional(),
  overwrite: flag.optional(),
  recursive: flag.optional(),
});

export interface VolumeFilesQuery {
  path: string;
  download: boolean;
  overwrite: boolean;
  recursive: boolean;
}

/** The POST body. `to` is taken exactly as written in the JSON (it is not URL-decoded). */
export const volumeFilesOp = z.discriminatedUnion('op', [
  z.strictObject({ op: z.literal('mkdir') }),
  z.strictObject({ op: z.literal('rename'), to: z.string().max(MAX_PATH_BYTES), overwrite: z.boolean().optional() }),
]);
export type VolumeFilesOp = z.infer<typeof volumeFilesOp>;

export function summariseIssues(error: z.ZodError): string {
  return error.issues.map((i) => (i.path.length > 0 ? `${i.path.join('.')}: ${i.message}` : i.message)).join('; ');
}

/** Parses the raw query string (after `?`). */
export function parseVolumeFilesQuery(rawQuery: string): VolumeFilesQuery {
  const params = new URLSearchParams(rawQuery);
  const fields: Record<string, string> = {};
  for (const [name, value] of params) {
    if (Object.hasOwn(fields, name)) throw new VolumeFileError('bad_request', `query parameter ${JSON.stringify(name)} is given more than once`);
    fields[name] = value;
  }
  const parsed = volumeFilesQuery.safeParse(fields);
  if (!parsed.success) throw new VolumeFileError('bad_request', `bad query: ${summariseIssues(parsed.error)}`);
  return {
    path: parsed.data.path ?? '',
    download: parsed.data.download ?? false,
    overwrite: parsed.data.overwrite ?? false,
    recursive: parsed.data.recursive ?? false,
  };
}
