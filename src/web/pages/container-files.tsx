/**
 * The container page's Files tab: browse a container's filesystem, download a file (pulled out
 * of the archive in the browser) or a folder (as the tar the engine sends), and upload a file
 * into a folder (a one-file tar built here) — all through the Engine API's archive endpoints on
 * the hub's Docker endpoint, so the host's policy (its `archive` section, off by default) judges
 * every call. Listing reads `GET /containers/ID/archive?path=DIR` as a stream and keeps only
 * the entries directly in DIR: the archive API is the one way in that needs no shell in the
 * image and no `exec` rights; the cost is that a folder's whole content crosses the wire, so
 * the walk stops after LIST_BYTE_CAP and says the list is incomplete.
 */
import type { JSX } from 'preact';
import { useRef, useState } from 'preact/hooks';
import { confirmAction } from '../components/dialog.tsx';
import { FileTable } from '../components/file-table.tsx';
import { Icon } from '../components/icons.tsx';
import { toast } from '../components/toasts.tsx';
import { AsyncView, ErrorState, InlineError, buttonClass, useAsync } from '../components/ui.tsx';
import { dockerPath, errorMessage, request } from '../lib/api.ts';
import { ago, bytes } from '../lib/format.ts';
import { fleet } from '../lib/live.ts';
import { policyAllows, policyRefusal } from '../lib/policy.ts';
import { useLocation } from '../lib/router.ts';
import { useStore } from '../lib/store.ts';
import { tarOneFile, walkTar, type TarEntry } from '../lib/tar.ts';

const LIST_BYTE_CAP = 64 * 1024 * 1024;
const LIST_ENTRY_CAP = 2000;
const UPLOAD_CAP = 256 * 1024 * 1024;

/** What `HEAD …/archive` says of a path (the X-Docker-Container-Path-Stat header). */
export interface PathStat {
  name: string;
  size: number;
  mode: number;
  mtime: string;
  linkTarget: string;
}

const DIR_BIT = 2 ** 31; // Go's os.ModeDir

export function normalizePath(p: string | null): string {
  const out: string[] = [];
  for (const s of (p ?? '').split('/')) {
    if (!s || s === '.') continue;
    if (s === '..') out.pop();
    else out.push(s);
  }
  return `/${out.join('/')}`;
}

const join = (dir: string, name: string): string => `${dir.replace(/\/+$/, '')}/${name}`;

interface Listing {
  stat: PathStat;
  isDir: boolean;
  entries: TarEntry[];
  incomplete: boolean;
}

function archivePath(node: string, id: string, path: string): string {
  return dockerPath(node, `/containers/${encodeURIComponent(id)}/archive?path=${encodeURIComponent(path)}`);
}

async function statPath(node: string, id: string, path: string, signal?: AbortSignal): Promise<PathStat> {
  const res = await request('HEAD', archivePath(node, id, path), signal ? { signal } : {});
  const raw = res.headers.get('x-docker-container-path-stat');
  if (!raw) throw new Error('The engine did not describe this path.');
  return JSON.parse(atob(raw)) as PathStat;
}

/** The tar entry names are relative to the archived folder's own name (`etc/hosts` for /etc). */
function childName(rootName: string, path: string): string | null {
  // The engine names entries under the folder's own name (`etc/hosts`), `./x`, or for `/` itself `/x`.
  const p = path.replace(/^(?:\.?\/)+/, '').replace(/\/+$/, '');
  const root = rootName.replace(/^(?:\.?\/)+/, '').replace(/\/+$/, '');
  const rel = root === '' || root === '.' ? p : p.startsWith(`${root}/`) ? p.slice(root.length + 1) : null;
  return rel && !rel.includes('/') ? rel : null;
}

async function list(node: string, id: string, path: string, signal: AbortSignal): Promise<Listing> {
  const stat = await statPath(node, id, path, signal);
  const isDir = (stat.mode & DIR_BIT) !== 0 || stat.mode < 0;
  if (!isDir) return { stat, isDir, entries: [], incomplete: false };
  const res = await request('GET', archivePath(node, id, path), { signal, headers: { Accept: 'application/x-tar' } });
  const entries: TarEntry[] = [];
  // Entries are named under the folder's own name (`etc/hosts`); for `/` there is no such prefix.
  const root = stat.name === '/' || stat.name === '' ? '' : stat.name;
  let read = 0;
  let incomplete = false;
  const counted = res.body!.pipeThrough(
    new TransformStream<Uint8Array, Uint8Array>({
      transform(chunk, ctl) {
        read += chunk.length;
        ctl.enqueue(chunk);
      },
    }),
  );
  await walkTar(counted, (e) => {
    const name = childName(root, e.path);
    if (name) entries.push({ ...e, path: name });
    if (entries.length >= LIST_ENTRY_CAP || read > LIST_BYTE_CAP) {
      incomplete = true;
      return 'stop';
    }
    return undefined;
  });
  entries.sort((a, b) => Number(b.kind === 'dir') - Number(a.kind === 'dir') || a.path.localeCompare(b.path));
  return { stat, isDir, entries, incomplete };
}

function saveBlob(blob: Blob, name: string): void {
  const url = URL.createObjectURL(blob);
  const a = document.createElement('a');
  a.href = url;
  a.download = name;
  document.body.append(a);
  a.click();
  a.remove();
  setTimeout(() => URL.revokeObjectURL(url), 30_000);
}

/** One file out of its archive, as itself. */
async function downloadFile(node: string, id: string, path: string, name: string): Promise<void> {
  const res = await request('GET', archivePath(node, id, path), { headers: { Accept: 'application/x-tar' } });
  let data: Uint8Array | null = null;
  await walkTar(res.body!, (e, bytesIn) => {
    if (e.kind !== 'file') return 'stop';
    if (!bytesIn) return 'want';
    data = bytesIn;
    return 'stop';
  });
  if (!data) throw new Error(`${name} is not a regular file.`);
  saveBlob(new Blob([data as Uint8Array<ArrayBuffer>]), name);
}

export function ContainerFilesView({ node, id, name, canWrite }: { node: string; id: string; name: string; canWrite: boolean }): JSX.Element {
  const view = useStore(fleet).nodes?.find((n) => n.name === node);
  const refusal = policyRefusal(view, 'archive');
  const loc = useLocation();
  const dir = normalizePath(loc.query.get('path'));
  const listing = useAsync((signal) => (policyAllows(view, 'archive') ? list(node, id, dir, signal) : Promise.resolve(null)), [node, id, dir, refusal]);
  const [busy, setBusy] = useState<string | null>(null);
  const [failure, setFailure] = useState<string | null>(null);
  const fileInput = useRef<HTMLInputElement>(null);
  const base = `/containers/${encodeURIComponent(node)}/${encodeURIComponent(id)}/files`;
  const href = (p: string): string => (p === '/' ? base : `${base}?path=${encodeURIComponent(p)}`);

  if (refusal) {
    return (
      <div class="card" role="status">
        <h2 class="card-title">Files are off on this host</h2>
        <p>{refusal}</p>
        <p class="muted small">
          Reading and writing a container's files uses the Engine API's archive endpoints, which the agent on {node} refuses unless its policy file lists <code>archive</code>.
        </p>
      </div>
    );
  }

  const download = async (path: string, fileName: string): Promise<void> => {
    setBusy(path);
    setFailure(null);
    try {
      await downloadFile(node, id, path, fileName);
    } catch (err) {
      setFailure(errorMessage(err));
    } finally {
      setBusy(null);
    }
  };

  const upload = async (files: FileList | null): Promise<void> => {
    const file = files?.[0];
    if (!file) return;
    setFailure(null);
    if (file.size > UPLOAD_CAP) {
      setFailure(`${file.name} is ${bytes(file.size)}; the browser uploads up to ${bytes(UPLOAD_CAP)} at once.`);
      return;
    }
    const target = join(dir, file.name);
    if (listing.data?.entries.some((e) => e.path === file.name)) {
      const ok = await confirmAction({
        title: `Replace ${file.name}?`,
        body: (
          <p>
            <code>{target}</code> already exists in {name}. Replace it with the file you chose ({bytes(file.size)})?
          </p>
        ),
        confirmLabel: 'Replace',
        danger: true,
      });
      if (!ok) return;
    }
    setBusy('upload');
    try {
      const tar = tarOneFile(file.name, new Uint8Array(await file.arrayBuffer()), { mtime: new Date(file.lastModified) });
      await request('PUT', archivePath(node, id, dir), { raw: tar, headers: { 'Content-Type': 'application/x-tar' } });
      toast.success(`Uploaded ${file.name} to ${dir} in ${name}`);
      listing.reload();
    } catch (err) {
      setFailure(errorMessage(err));
    } finally {
      setBusy(null);
    }
  };

  const crumbs = dir.split('/').filter(Boolean);
  return (
    <section class="card" aria-labelledby="files-title">
      <div class="files-head">
        <h2 class="card-title" id="files-title">
          Files in <code class="break">{dir}</code>
        </h2>
        <div class="row-actions">
          {canWrite && listing.data?.isDir && (
            <>
              <input
                ref={fileInput}
                id="container-upload"
                type="file"
                class="sr-only"
                tabIndex={-1}
                aria-hidden="true"
                onChange={(e) => {
                  void upload(e.currentTarget.files);
                  e.currentTarget.value = '';
                }}
              />
              <button type="button" class={buttonClass('primary', true)} disabled={busy === 'upload'} onClick={() => fileInput.current?.click()}>
                <Icon name="upload" size={15} />
                {busy === 'upload' ? 'Uploading…' : 'Upload file'}
              </button>
            </>
          )}
          {listing.data?.isDir && (
            <a class={buttonClass('ghost', true)} href={archivePath(node, id, dir)} download={`${crumbs.at(-1) ?? 'root'}.tar`}>
              <Icon name="download" size={15} />
              Download folder (tar)
            </a>
          )}
          <button type="button" class={buttonClass('ghost', true)} onClick={listing.reload}>
            Refresh
          </button>
        </div>
      </div>
      <nav class="crumbs" aria-label="Folder path">
        <ol>
          <li>
            <a href={href('/')}>/</a>
          </li>
          {crumbs.map((c, i) => (
            <li key={i} aria-current={i === crumbs.length - 1 ? 'page' : undefined}>
              {i === crumbs.length - 1 ? c : <a href={href(`/${crumbs.slice(0, i + 1).join('/')}`)}>{c}</a>}
            </li>
          ))}
        </ol>
      </nav>
      {failure && <InlineError>{failure}</InlineError>}
      <AsyncView state={listing} loadingLabel="Reading the folder…" errorTitle={`Could not read ${dir}`}>
        {(l) =>
          !l ? (
            <ErrorState error="Files are off on this host." />
          ) : !l.isDir ? (
            <div>
              <p>
                <Icon name="file" size={16} /> <code class="break">{dir}</code> is a file of {bytes(l.stat.size)}, changed {ago(l.stat.mtime)}.
              </p>
              <button type="button" class={buttonClass('default', true)} disabled={busy === dir} onClick={() => void download(dir, l.stat.name)}>
                <Icon name="download" size={15} />
                Download {l.stat.name}
              </button>
            </div>
          ) : (
            <FileTable
              caption={`Files in ${dir} of ${name}`}
              dir={dir}
              entries={l.entries}
              href={href}
              rowOf={(e) => ({ name: e.path, path: join(dir, e.path), kind: e.kind, size: e.size, mode: e.mode, modified: e.mtime.toISOString(), linkTarget: e.linkTarget })}
              actions={(e, { path }) => (
                <>
                  {e.kind === 'file' && (
                    <button type="button" class={buttonClass('ghost', true)} disabled={busy === path} onClick={() => void download(path, e.path)} aria-label={`Download ${e.path}`}>
                      <Icon name="download" size={15} />
                      Download
                    </button>
                  )}
                  {e.kind === 'dir' && (
                    <a class={buttonClass('ghost', true)} href={archivePath(node, id, path)} download={`${e.path}.tar`} aria-label={`Download ${e.path} as tar`}>
                      <Icon name="download" size={15} />
                      Tar
                    </a>
                  )}
                </>
              )}
            >
              {l.incomplete && (
                <p class="warn-text small table-note">
                  This folder is large: the list stopped after {l.entries.length} entries and {bytes(LIST_BYTE_CAP)} read, so some entries are missing. Open a folder further down.
                </p>
              )}
            </FileTable>
          )
        }
      </AsyncView>
    </section>
  );
}
