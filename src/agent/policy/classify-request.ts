/**
 * Which policy section a Docker API request belongs to. The path is read the way the engine
 * reads it — percent-decoded once, then matched against its routes with an optional
 * `/vX.Y` prefix — and anything ambiguous is unknown (section null) rather than guessed:
 * `..` or `.` segments, NUL and other control characters, `#`, malformed escapes, a path
 * that does not start with `/`. Repeated and trailing slashes are collapsed (the engine
 * answers those with a redirect to the collapsed path, which is classified the same way).
 */
import { API_ROUTES } from './api-routes.ts';
import type { SectionName } from './policy-file.ts';

export interface Classification {
  section: SectionName | null;
  /** The engine's operation id (e.g. "ContainerCreate"), or "unknown". */
  op: string;
}

const UNKNOWN: Classification = Object.freeze({ section: null, op: 'unknown' });
const VERSION_PREFIX = /^\/v[0-9.]+(?=\/)/;

/** The request path without query, decoded and normalised; null when it cannot be trusted. */
export function normaliseApiPath(rawPath: string): string | null {
  const queryAt = rawPath.indexOf('?');
  const encoded = queryAt === -1 ? rawPath : rawPath.slice(0, queryAt);
  if (!encoded.startsWith('/') || encoded.includes('#')) return null;
  let decoded: string;
  try {
    decoded = decodeURIComponent(encoded);
  } catch {
    return null;
  }
  if (/[\u0000-\u001f\u007f]/.test(decoded)) return null;
  const segments = decoded.split('/').filter((seg) => seg !== '');
  if (segments.some((seg) => seg === '.' || seg === '..')) return null;
  const path = `/${segments.join('/')}`;
  return path.replace(VERSION_PREFIX, '');
}

/** The query parameters of a raw request path (empty when there is none). */
export function queryOf(rawPath: string): URLSearchParams {
  const queryAt = rawPath.indexOf('?');
  return new URLSearchParams(queryAt === -1 ? '' : rawPath.slice(queryAt + 1));
}

export function classify(method: string, path: string): Classification {
  const normal = normaliseApiPath(path);
  if (normal === null) return UNKNOWN;
  for (const route of API_ROUTES) {
    if (route.methods.includes(method) && route.pattern.test(normal)) return { section: route.section, op: route.op };
  }
  return UNKNOWN;
}
