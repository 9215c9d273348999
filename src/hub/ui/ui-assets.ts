/**
 * The web UI: bundled from `src/web/main.tsx` by esbuild when the hub starts (no build step
 * between a checkout and a running hub), precompressed once, then served from memory.
 *
 * `buildUi()` makes the assets; `createUiHandler(assets)` answers GET/HEAD for `/`, every client
 * route (SPA fallback to index.html) and `/assets/*`, and returns false for anything else
 * (`/api/`, `/docker/`, `/gateway/`, `/healthz`, other methods) so the caller can route it on.
 */
import { createHash } from 'node:crypto';
import { readFile } from 'node:fs/promises';
import type { IncomingMessage, ServerResponse } from 'node:http';
import { basename, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { promisify } from 'node:util';
import zlib from 'node:zlib';
import { build, type Metafile } from 'esbuild';

const gzip = promisify(zlib.gzip);
const brotli = promisify(zlib.brotliCompress);

const WEB_DIR = fileURLToPath(new URL('../../web/', import.meta.url));
const PROJECT_DIR = fileURLToPath(new URL('../../../', import.meta.url));
const ENTRY = join(WEB_DIR, 'main.tsx');
const INDEX_TEMPLATE = join(WEB_DIR, 'index.html');

export const ASSET_PREFIX = '/assets/';

export const UI_CSP = "default-src 'self'; img-src 'self' data:; style-src 'self' 'unsafe-inline'; connect-src 'self'; frame-ancestors 'none'";

export interface UiAsset {
  /** URL path, e.g. `/assets/main-ABCD1234.js` or `/index.html`. */
  path: string;
  contentType: string;
  body: Buffer;
  gzip: Buffer | null;
  br: Buffer | null;
  /** Strong validator of the identity body; each encoding gets its own suffix. */
  etag: string;
}

export interface UiAssets {
  index: UiAsset;
  /** Every file under /assets/, by URL path. */
  assets: Map<string, UiAsset>;
  /** URL path of the entry script. */
  entry: string;
  /** URL paths loaded by index.html before the app runs: the entry, its static imports, its CSS. */
  firstLoad: string[];
  /** How long buildUi() took, in milliseconds. */
  buildMs: number;
}

const CONTENT_TYPES: Record<string, string> = {
  '.js': 'text/javascript; charset=utf-8',
  '.css': 'text/css; charset=utf-8',
  '.html': 'text/html; charset=utf-8',
  '.svg': 'image/svg+xml',
  '.json': 'application/json',
  '.map': 'application/json',
  '.woff2': 'font/woff2',
  '.png': 'image/png',
};

function contentTypeOf(path: string): string {
  const dot = path.lastIndexOf('.');
  return CONTENT_TYPES[dot >= 0 ? path.slice(dot) : ''] ?? 'application/octet-stream';
}

const COMPRESSIBLE = /^(text\/|application\/json|image\/svg\+xml)/;

async function makeAsset(path: string, body: Buffer): Promise<UiAsset> {
  const contentType = contentTypeOf(path);
  const etag = `"${createHash('sha256').update(body).digest('base64url').slice(0, 22)}"`;
  if (!COMPRESSIBLE.test(contentType) || body.length < 256) return { path, contentType, body, gzip: null, br: null, etag };
  const [gz, br] = await Promise.all([
    gzip(body, { level: 9 }),
    brotli(body, {
      params: {
        // 11 costs ~1 s per 350 KB on the CI machine and saves ~5 % over 9; keep start-up fast.
        [zlib.constants.BROTLI_PARAM_QUALITY]: body.length <= 64 * 1024 ? 11 : 9,
        [zlib.constants.BROTLI_PARAM_SIZE_HINT]: body.length,
        [zlib.constants.BROTLI_PARAM_MODE]: zlib.constants.BROTLI_MODE_TEXT,
      },
    }),
  ]);
  return {
    path,
    contentType,
    body,
    etag,
    gzip: gz.length < body.length ? gz : null,
    br: br.length < body.length ? br : null,
  };
}

/** Output paths (relative to the project) of everything `file` imports statically, itself included. */
function staticClosure(meta: Metafile, file: string): string[] {
  const seen = new Set<string>();
  const visit = (f: string): void => {
    if (seen.has(f)) return;
    seen.add(f);
    for (const imp of meta.outputs[f]?.imports ?? []) {
      if (imp.kind === 'import-statement' && !imp.external) visit(imp.path);
    }
  };
  visit(file);
  return [...seen];
}

function escapeAttr(s: string): string {
  return s.replace(/&/g, '&amp;').replace(/"/g, '&quot;').replace(/</g, '&lt;');
}

/** Bundles, hashes and precompresses the UI. Takes well under a second on the CI machine. */
export async function buildUi(): Promise<UiAssets> {
  const started = performance.now();
  const outdir = join(PROJECT_DIR, '.ui-build'); // never written (write: false): names outputs only
  const [result, template] = await Promise.all([
    build({
      entryPoints: [ENTRY],
      absWorkingDir: PROJECT_DIR,
      outdir,
      write: false,
      bundle: true,
      splitting: true,
      format: 'esm',
      platform: 'browser',
      target: ['es2022', 'chrome109', 'firefox115', 'safari16'],
      minify: true,
      metafile: true,
      entryNames: '[name]-[hash]',
      chunkNames: 'chunk-[hash]',
      assetNames: '[name]-[hash]',
      jsx: 'automatic',
      jsxImportSource: 'preact',
      // The project's tsconfig is for Node; the UI's compile settings live here.
      tsconfigRaw: { compilerOptions: { jsx: 'react-jsx', jsxImportSource: 'preact', verbatimModuleSyntax: true, target: 'es2022' } },
      loader: { '.svg': 'file', '.woff2': 'file' },
      legalComments: 'none',
      logLevel: 'silent',
      define: { 'process.env.NODE_ENV': '"production"' },
    }),
    readFile(INDEX_TEMPLATE, 'utf8'),
  ]);
  if (result.errors.length > 0) throw new Error(`UI build failed: ${result.errors.map((e) => e.text).join('; ')}`);
  const meta = result.metafile;

  const rel = (abs: string): string => abs.slice(PROJECT_DIR.length).replace(/\\/g, '/');
  const urlOf = (relPath: string): string => ASSET_PREFIX + basename(relPath);

  // Every `import()` target is an entry point in the metafile too (a lazy page): pick main.tsx's output.
  const entryIn = rel(ENTRY);
  const entryRel = Object.keys(meta.outputs).find((o) => meta.outputs[o]?.entryPoint === entryIn && o.endsWith('.js'));
  if (!entryRel) throw new Error('UI build produced no entry script');
  const entryMeta = meta.outputs[entryRel]!;
  const staticJs = staticClosure(meta, entryRel);
  const css = entryMeta.cssBundle ? [entryMeta.cssBundle] : [];

  const files = result.outputFiles.filter((f) => !f.path.endsWith('.map'));
  const assetList = await Promise.all(files.map((f) => makeAsset(urlOf(rel(f.path)), Buffer.from(f.contents))));
  const assets = new Map(assetList.map((a) => [a.path, a]));

  const head = [
    ...css.map((c) => `<link rel="stylesheet" href="${escapeAttr(urlOf(c))}">`),
    ...staticJs.filter((j) => j !== entryRel).map((j) => `<link rel="modulepreload" href="${escapeAttr(urlOf(j))}">`),
    `<script type="module" src="${escapeAttr(urlOf(entryRel))}"></script>`,
  ].join('\n    ');
  if (!template.includes('<!-- dockfleet:assets -->')) throw new Error(`${INDEX_TEMPLATE} lacks <!-- dockfleet:assets -->`);
  const html = template.replace('<!-- dockfleet:assets -->', head);
  const index = await makeAsset('/index.html', Buffer.from(html));

  return {
    index,
    assets,
    entry: urlOf(entryRel),
    firstLoad: [...staticJs, ...css].map(urlOf),
    buildMs: performance.now() - started,
  };
}

/** Bytes a first visit downloads (gzip): index.html, the entry script, its static imports and its CSS. */
export function firstLoadBytes(assets: UiAssets): number {
  let total = (assets.index.gzip ?? assets.index.body).length;
  for (const p of assets.firstLoad) {
    const a = assets.assets.get(p);
    if (a) total += (a.gzip ?? a.body).length;
  }
  return total;
}

/** The same, JavaScript only (the budget: ≤ 60 KB gzipped, issue 12). */
export function firstLoadJsBytes(assets: UiAssets): number {
  let total = 0;
  for (const p of assets.firstLoad) {
    const a = assets.assets.get(p);
    if (a && p.endsWith('.js')) total += (a.gzip ?? a.body).length;
  }
  return total;
}

/** Paths the UI never answers: the API, the Docker gateway, the agents' gateway, health. */
const NOT_UI = /^\/(?:api|docker|gateway|healthz)(?:[/?#]|$)/;

type Coding = 'br' | 'gzip' | 'identity';

/** Picks br, then gzip, honouring q=0 and `*`. */
export function pickEncoding(header: string | undefined, asset: UiAsset): Coding {
  if (!header) return 'identity';
  const q = new Map<string, number>();
  for (const part of header.split(',')) {
    const [name, ...params] = part.trim().toLowerCase().split(';');
    if (!name) continue;
    let weight = 1;
    for (const p of params) {
      const m = /^\s*q=([0-9.]+)\s*$/.exec(p);
      if (m) weight = Number(m[1]);
    }
    q.set(name, Number.isFinite(weight) ? weight : 0);
  }
  const accepts = (c: string): boolean => (q.get(c) ?? q.get('*') ?? 0) > 0;
  if (asset.br && accepts('br')) return 'br';
  if (asset.gzip && accepts('gzip')) return 'gzip';
  return 'identity';
}

function etagMatches(ifNoneMatch: string | undefined, etag: string): boolean {
  if (!ifNoneMatch) return false;
  if (ifNoneMatch.trim() === '*') return true;
  return ifNoneMatch.split(',').some((t) => t.trim().replace(/^W\//, '') === etag);
}

const COMMON_HEADERS: Record<string, string> = {
  'x-content-type-options': 'nosniff',
  'referrer-policy': 'same-origin',
};

const INDEX_HEADERS: Record<string, string> = {
  ...COMMON_HEADERS,
  'cache-control': 'no-cache',
  'content-security-policy': UI_CSP,
  'x-frame-options': 'DENY',
  'cross-origin-opener-policy': 'same-origin',
};

const ASSET_HEADERS: Record<string, string> = {
  ...COMMON_HEADERS,
  'cache-control': 'public, max-age=31536000, immutable',
};

function send(req: IncomingMessage, res: ServerResponse, asset: UiAsset, extra: Record<string, string>): void {
  const coding = pickEncoding(req.headers['accept-encoding'] as string | undefined, asset);
  const body = coding === 'br' ? asset.br! : coding === 'gzip' ? asset.gzip! : asset.body;
  const etag = coding === 'identity' ? asset.etag : `${asset.etag.slice(0, -1)}-${coding}"`;
  const headers: Record<string, string | number> = { ...extra, etag, 'content-type': asset.contentType };
  if (asset.gzip || asset.br) headers.vary = 'Accept-Encoding';
  if (etagMatches(req.headers['if-none-match'], etag)) {
    res.writeHead(304, headers);
    res.end();
    return;
  }
  if (coding !== 'identity') headers['content-encoding'] = coding;
  headers['content-length'] = body.length;
  res.writeHead(200, headers);
  res.end(req.method === 'HEAD' ? undefined : body);
}

/**
 * A request handler for the UI. Returns true when it answered, false when the request is not
 * the UI's (another method, or a path under /api/, /docker/, /gateway/, /healthz).
 */
export function createUiHandler(assets: UiAssets): (req: IncomingMessage, res: ServerResponse) => boolean {
  return (req, res) => {
    if (req.method !== 'GET' && req.method !== 'HEAD') return false;
    const url = req.url ?? '/';
    if (!url.startsWith('/') || url.startsWith('//')) return false;
    const q = url.search(/[?#]/);
    const path = q < 0 ? url : url.slice(0, q);
    if (NOT_UI.test(path)) return false;
    if (path.startsWith(ASSET_PREFIX)) {
      const asset = assets.assets.get(path);
      if (!asset) {
        res.writeHead(404, { ...COMMON_HEADERS, 'content-type': 'text/plain; charset=utf-8', 'cache-control': 'no-cache' });
        res.end(req.method === 'HEAD' ? undefined : 'not found\n');
        return true;
      }
      send(req, res, asset, ASSET_HEADERS);
      return true;
    }
    send(req, res, assets.index, INDEX_HEADERS);
    return true;
  };
}

/** For the hub's start-up log line. */
export function describeUi(assets: UiAssets): { files: number; firstLoadGzipBytes: number; buildMs: number } {
  return { files: assets.assets.size, firstLoadGzipBytes: firstLoadBytes(assets), buildMs: Math.round(assets.buildMs) };
}
