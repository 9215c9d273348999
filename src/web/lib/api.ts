/** Talking to the hub: REST (/api/v1) and the Docker Engine API (/docker/nodes/NAME). */

/** Every request that changes something carries this header (the hub's CSRF guard). */
export const UI_HEADER = 'X-Dockfleet-UI';

export class ApiError extends Error {
  constructor(
    readonly status: number,
    readonly code: string,
    message: string,
    /** Seconds, from Retry-After (429). */
    readonly retryAfter: number | null = null,
  ) {
    super(message);
  }
}

type Unauthorized = () => void;
let onUnauthorized: Unauthorized = () => {};
/** Called whenever a request answers 401: the app shows the sign-in page. */
export function setUnauthorizedHandler(fn: Unauthorized): void {
  onUnauthorized = fn;
}

function retryAfterSeconds(v: string | null): number | null {
  if (!v) return null;
  const n = Number(v);
  if (Number.isFinite(n)) return Math.max(0, Math.ceil(n));
  const t = Date.parse(v);
  return Number.isFinite(t) ? Math.max(0, Math.ceil((t - Date.now()) / 1000)) : null;
}

const STATUS_TEXT: Record<number, string> = {
  400: 'bad request',
  401: 'not signed in',
  403: 'not allowed',
  404: 'not found',
  409: 'conflict',
  413: 'too large',
  429: 'too many requests',
  500: 'server error',
  502: 'node unreachable',
  503: 'unavailable',
  504: 'timed out',
};

/** Reads an error body in either shape: REST `{error:{code,message}}` or Docker `{message}`. */
export async function errorFrom(res: Response): Promise<ApiError> {
  let code = `http_${res.status}`;
  let message = '';
  const text = await res.text().catch(() => '');
  if (text) {
    try {
      const body = JSON.parse(text) as { error?: { code?: string; message?: string }; message?: string };
      if (body.error && typeof body.error === 'object') {
        code = body.error.code ?? code;
        message = body.error.message ?? '';
      } else if (typeof body.message === 'string') {
        message = body.message;
      }
    } catch {
      message = text.length > 300 ? `${text.slice(0, 300)}…` : text.trim();
    }
  }
  if (!message) message = `${res.status} ${STATUS_TEXT[res.status] ?? res.statusText ?? 'error'}`;
  return new ApiError(res.status, code, message, retryAfterSeconds(res.headers.get('retry-after')));
}

export interface RequestOptions {
  body?: unknown;
  /** Raw body (not JSON-encoded). */
  raw?: BodyInit;
  signal?: AbortSignal;
  /** Don't treat 401 as "signed out" (sign-in form, /me probe). */
  quiet401?: boolean;
  headers?: Record<string, string>;
}

/**
 * Signs Docker calls for hosts that require signed intent (lib/signing.ts installs it): headers
 * to add, and the body to send instead when it travels in sealed frames.
 */
export type DockerSigner = (method: string, path: string, body: BodyInit | undefined) => Promise<{ headers: Record<string, string>; body?: BodyInit }>;
let dockerSigner: DockerSigner | null = null;
export function setDockerSigner(fn: DockerSigner): void {
  dockerSigner = fn;
}

/** The intent headers (and sealed body) for a Docker call, for callers that fetch() themselves. */
export async function signDocker(method: string, path: string, body?: BodyInit): Promise<{ headers: Record<string, string>; body?: BodyInit }> {
  return dockerSigner && path.startsWith('/docker/nodes/') ? dockerSigner(method, path, body) : { headers: {} };
}

/** Pauses before a read that failed to reach the hub is sent again. */
const NETWORK_RETRIES_MS = [250, 1_000];

export async function request(method: string, path: string, opts: RequestOptions = {}): Promise<Response> {
  const headers: Record<string, string> = { Accept: 'application/json', ...opts.headers };
  if (method !== 'GET' && method !== 'HEAD') headers[UI_HEADER] = '1';
  let body: BodyInit | undefined;
  if (opts.raw !== undefined) body = opts.raw;
  else if (opts.body !== undefined) {
    headers['Content-Type'] = 'application/json';
    body = JSON.stringify(opts.body);
  }
  if (dockerSigner && path.startsWith('/docker/nodes/')) {
    const signed = await dockerSigner(method, path, body);
    Object.assign(headers, signed.headers);
    if (signed.body !== undefined) body = signed.body;
  }
  let res: Response;
  for (let attempt = 1; ; attempt++) {
    try {
      res = await fetch(path, { method, headers, body: body ?? null, credentials: 'same-origin', signal: opts.signal ?? null });
      break;
    } catch (err) {
      if ((err as Error).name === 'AbortError') throw err;
      // A read that never reached the hub is safe to send again: a blip (Wi-Fi roaming, a VPN
      // coming up, the browser dropping requests when interfaces change) should not become an
      // error on the page. Changes are never resent: the person decides.
      if ((method !== 'GET' && method !== 'HEAD') || attempt > NETWORK_RETRIES_MS.length || opts.signal?.aborted) {
        throw new ApiError(0, 'network', 'The hub could not be reached. Check your connection.');
      }
      await new Promise((resolve) => setTimeout(resolve, NETWORK_RETRIES_MS[attempt - 1]));
    }
  }
  // 304 from a Docker action means "already so" (start a running container): not a failure.
  if (!res.ok && res.status !== 304) {
    const e = await errorFrom(res);
    if (res.status === 401 && !opts.quiet401) onUnauthorized();
    throw e;
  }
  return res;
}

export async function json<T>(method: string, path: string, opts: RequestOptions = {}): Promise<T> {
  const res = await request(method, path, opts);
  if (res.status === 204 || res.status === 304) return undefined as T;
  const text = await res.text();
  return (text ? JSON.parse(text) : undefined) as T;
}

export const get = <T>(path: string, opts?: RequestOptions): Promise<T> => json<T>('GET', path, opts);
export const post = <T>(path: string, body?: unknown, opts?: RequestOptions): Promise<T> => json<T>('POST', path, { ...opts, body });
export const del = <T>(path: string, opts?: RequestOptions): Promise<T> => json<T>('DELETE', path, opts);

const enc = encodeURIComponent;

/** Docker Engine API path for one node. */
export function dockerPath(node: string, path: string): string {
  return `/docker/nodes/${enc(node)}${path.startsWith('/') ? path : `/${path}`}`;
}

export function apiNodePath(node: string, rest = ''): string {
  return `/api/v1/nodes/${enc(node)}${rest}`;
}

export function errorMessage(err: unknown): string {
  if (err instanceof ApiError) return err.message;
  if (err instanceof Error) return err.message;
  return String(err);
}

/** Builds a query string, skipping empty values. */
export function qs(params: Record<string, string | number | boolean | null | undefined>): string {
  const sp = new URLSearchParams();
  for (const [k, v] of Object.entries(params)) {
    if (v === undefined || v === null || v === '' || v === false) continue;
    sp.set(k, v === true ? '1' : String(v));
  }
  const s = sp.toString();
  return s ? `?${s}` : '';
}
