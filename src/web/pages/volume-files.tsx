/** Browse, upload, download, rename and delete files in a volume (the host's policy decides). */
import type { JSX } from 'preact';
import { useRef, useState } from 'preact/hooks';
import { Dialog, confirmAction } from '../components/dialog.tsx';
import { FileTable } from '../components/file-table.tsx';
import { Icon } from '../components/icons.tsx';
import { toast } from '../components/toasts.tsx';
import { ActionButton, Empty, ErrorState, InlineError, Loading, PageHeader, SubmitButton, buttonClass, useAsync } from '../components/ui.tsx';
import { canChange } from '../lib/access.ts';
import { ApiError, UI_HEADER, apiNodePath, del, errorMessage, get, post } from '../lib/api.ts';
import { bytes } from '../lib/format.ts';
import { fleet } from '../lib/live.ts';
import { useLocation } from '../lib/router.ts';
import { USE_CONNECT, signedIntentOf } from '../lib/signing.ts';
import { useStore } from '../lib/store.ts';
import type { FileEntry, FileListing, Me } from '../lib/types.ts';

export function joinPath(dir: string, name: string): string {
  return `${dir.replace(/\/+$/, '')}/${name}`;
}

/** The agent wants volume-relative paths: "." for the root, "a/b" below it. */
export function apiPath(p: string): string {
  const n = normalizePath(p);
  return n === '/' ? '.' : n.slice(1);
}

export function normalizePath(p: string | null): string {
  if (!p) return '/';
  const parts = p.split('/').filter((s) => s && s !== '.');
  const out: string[] = [];
  for (const s of parts) {
    if (s === '..') out.pop();
    else out.push(s);
  }
  return `/${out.join('/')}`;
}

interface Upload {
  id: number;
  name: string;
  loaded: number;
  total: number;
  state: 'uploading' | 'done' | 'error' | 'conflict';
  error?: string;
  xhr?: XMLHttpRequest;
}

let uploadSeq = 1;

export function VolumeFilesPage({ me, node, volume }: { me: Me; node: string; volume: string }): JSX.Element {
  const loc = useLocation();
  const dir = normalizePath(loc.query.get('path'));
  const base = apiNodePath(node, `/volumes/${encodeURIComponent(volume)}/files`);
  const listing = useAsync((signal) => get<FileListing>(`${base}?path=${encodeURIComponent(apiPath(dir))}`, { signal }), [base, dir]);
  const [uploads, setUploads] = useState<Upload[]>([]);
  const [mkdirOpen, setMkdirOpen] = useState(false);
  const [renaming, setRenaming] = useState<FileEntry | null>(null);
  const [dragging, setDragging] = useState(false);
  const fileInput = useRef<HTMLInputElement>(null);
  // The web UI does not sign volume-file writes: on a signed host the browser is read-only.
  const signedHost = signedIntentOf(useStore(fleet).nodes?.find((n) => n.name === node)) !== null;
  const canWrite = canChange(me, node) && !signedHost;
  const filesHref = (p: string): string => `/nodes/${encodeURIComponent(node)}/volumes/${encodeURIComponent(volume)}/files${p === '/' ? '' : `?path=${encodeURIComponent(p)}`}`;

  const patch = (id: number, u: Partial<Upload>): void => setUploads((list) => list.map((x) => (x.id === id ? { ...x, ...u } : x)));

  const uploadOne = (file: File, targetDir: string, overwrite = false, id = uploadSeq++): void => {
    const path = joinPath(targetDir, file.name);
    const xhr = new XMLHttpRequest();
    xhr.open('PUT', `${base}?path=${encodeURIComponent(apiPath(path))}${overwrite ? '&overwrite=1' : ''}`);
    xhr.setRequestHeader(UI_HEADER, '1');
    xhr.setRequestHeader('Content-Type', 'application/octet-stream');
    const entry: Upload = { id, name: file.name, loaded: 0, total: file.size, state: 'uploading', xhr };
    setUploads((list) => (list.some((x) => x.id === id) ? list.map((x) => (x.id === id ? entry : x)) : [...list, entry]));
    xhr.upload.addEventListener('progress', (e) => patch(id, { loaded: e.loaded, total: e.lengthComputable ? e.total : file.size }));
    xhr.addEventListener('load', () => {
      if (xhr.status >= 200 && xhr.status < 300) {
        patch(id, { state: 'done', loaded: file.size, xhr: undefined });
        if (targetDir === dir) listing.reload();
        setTimeout(() => setUploads((list) => list.filter((x) => x.id !== id || x.state !== 'done')), 4000);
        return;
      }
      let message = `${xhr.status} ${xhr.statusText}`;
      try {
        const b = JSON.parse(xhr.responseText) as { error?: { message?: string }; message?: string };
        message = b.error?.message ?? b.message ?? message;
      } catch {
        /* not JSON */
      }
      if (xhr.status === 409 && !overwrite) {
        patch(id, { state: 'conflict', error: message, xhr: undefined });
        void confirmAction({
          title: `Replace ${file.name}?`,
          body: (
            <p>
              <code>{path}</code> already exists in the volume. Replace it with the file you chose ({bytes(file.size)})?
            </p>
          ),
          confirmLabel: 'Replace',
          danger: true,
        }).then((ok) => {
          if (ok) uploadOne(file, targetDir, true, id);
          else setUploads((list) => list.filter((x) => x.id !== id));
        });
        return;
      }
      if (xhr.status === 401) window.location.reload();
      patch(id, { state: 'error', error: message, xhr: undefined });
    });
    xhr.addEventListener('error', () => patch(id, { state: 'error', error: 'network error', xhr: undefined }));
    xhr.addEventListener('abort', () => setUploads((list) => list.filter((x) => x.id !== id)));
    xhr.send(file);
  };

  const startUploads = (files: FileList | File[] | null): void => {
    if (!files) return;
    for (const f of Array.from(files)) uploadOne(f, dir);
  };

  const askRemove = (e: FileEntry) => () => {
    const path = joinPath(dir, e.name);
    const isDir = e.type === 'dir';
    return confirmAction({
      title: `Delete ${e.name}?`,
      body: (
        <p>
          {isDir ? (
            <>
              The folder <code>{path}</code> and everything in it
            </>
          ) : (
            <>
              The file <code>{path}</code>
            </>
          )}{' '}
          will be deleted from the volume <strong>{volume}</strong>. This cannot be undone.
        </p>
      ),
      confirmLabel: 'Delete',
      danger: true,
    });
  };
  const removeEntry = async (e: FileEntry): Promise<void> => {
    const path = joinPath(dir, e.name);
    const isDir = e.type === 'dir';
    await del(`${base}?path=${encodeURIComponent(apiPath(path))}${isDir ? '&recursive=1' : ''}`);
    toast.success(`${e.name} deleted`);
    listing.reload();
  };

  const crumbs = dir === '/' ? [] : dir.split('/').filter(Boolean);
  const entries = listing.data ? [...listing.data.entries].sort((a, b) => Number(b.type === 'dir') - Number(a.type === 'dir') || a.name.localeCompare(b.name)) : [];
  const forbidden = listing.error instanceof ApiError && listing.error.status === 403;

  return (
    <>
      <nav class="crumbs" aria-label="Breadcrumb">
        <ol>
          <li>
            <a href={`/nodes/${encodeURIComponent(node)}/volumes`}>Volumes on {node}</a>
          </li>
          <li>
            <a href={filesHref('/')} aria-current={dir === '/' ? 'page' : undefined}>
              {volume}
            </a>
          </li>
          {crumbs.map((c, i) => {
            const p = `/${crumbs.slice(0, i + 1).join('/')}`;
            return (
              <li key={p}>
                <a href={filesHref(p)} aria-current={p === dir ? 'page' : undefined}>
                  {c}
                </a>
              </li>
            );
          })}
        </ol>
      </nav>
      {signedHost && canChange(me, node) && (
        <p class="muted small" role="note">
          {USE_CONNECT} The web UI shows this volume's files read-only.
        </p>
      )}
      <PageHeader
        title={<span class="break">{volume}</span>}
        sub={
          <>
            files in <code>{dir}</code> on {node}
          </>
        }
      >
        {canWrite && (
          <>
            <input
              ref={fileInput}
              type="file"
              multiple
              class="sr-only"
              tabIndex={-1}
              aria-hidden="true"
              onChange={(e) => {
                startUploads(e.currentTarget.files);
                e.currentTarget.value = '';
              }}
            />
            <button type="button" class={buttonClass('primary')} onClick={() => fileInput.current?.click()} disabled={forbidden}>
              <Icon name="upload" size={16} />
              Upload
            </button>
            <button type="button" class={buttonClass('default')} onClick={() => setMkdirOpen(true)} disabled={forbidden}>
              <Icon name="folder" size={16} />
              New folder
            </button>
          </>
        )}
        <button type="button" class={buttonClass('ghost')} onClick={listing.reload} aria-label="Refresh">
          <Icon name="refresh" size={16} />
        </button>
      </PageHeader>

      {uploads.length > 0 && (
        <ul class="uploads" aria-label="Uploads">
          {uploads.map((u) => (
            <li key={u.id} class={`upload upload-${u.state}`}>
              <span class="upload-name break">{u.name}</span>
              {u.state === 'uploading' && (
                <>
                  <progress max={u.total || 1} value={u.loaded} aria-label={`Uploading ${u.name}`} />
                  <span class="small muted">
                    {u.total ? Math.floor((u.loaded / u.total) * 100) : 0}% of {bytes(u.total)}
                  </span>
                  <button type="button" class={buttonClass('ghost', true)} onClick={() => u.xhr?.abort()}>
                    Cancel
                  </button>
                </>
              )}
              {u.state === 'done' && <span class="ok-text small">Uploaded</span>}
              {u.state === 'conflict' && <span class="warn-text small">Already exists</span>}
              {u.state === 'error' && (
                <>
                  <span class="bad-text small" role="alert">
                    Failed: {u.error}
                  </span>
                  <button type="button" class={buttonClass('ghost', true)} onClick={() => setUploads((l) => l.filter((x) => x.id !== u.id))}>
                    Dismiss
                  </button>
                </>
              )}
            </li>
          ))}
        </ul>
      )}

      <div
        class={`dropzone${dragging ? ' dragging' : ''}`}
        onDragOver={(e) => {
          if (!canWrite || forbidden || !e.dataTransfer?.types.includes('Files')) return;
          e.preventDefault();
          setDragging(true);
        }}
        onDragLeave={() => setDragging(false)}
        onDrop={(e) => {
          if (!canWrite || forbidden) return;
          e.preventDefault();
          setDragging(false);
          startUploads(e.dataTransfer?.files ?? null);
        }}
      >
        {listing.data === undefined ? (
          listing.error ? (
            <ErrorState title={forbidden ? 'Not allowed' : 'Could not list files'} error={listing.error} onRetry={listing.reload} />
          ) : (
            <Loading label="Listing files…" />
          )
        ) : (
          <>
            {listing.error ? <ErrorState title={forbidden ? 'Not allowed' : 'Could not list files'} error={listing.error} onRetry={listing.reload} /> : null}
            {entries.length === 0 && dir === '/' ? (
              <Empty title="This volume is empty">{canWrite && <p>Upload files or drop them here.</p>}</Empty>
            ) : (
              <FileTable
                caption={`Files in ${dir}`}
                dir={dir}
                entries={entries}
                href={filesHref}
                rowOf={(e) => ({ name: e.name, path: joinPath(dir, e.name), kind: e.type, size: e.size, mode: e.mode, modified: e.modifiedAt, linkTarget: e.linkTarget })}
                actions={(e, { path }) => (
                  <>
                    {e.type === 'file' && (
                      <a class={buttonClass('ghost', true)} href={`${base}?path=${encodeURIComponent(apiPath(path))}&download=1`} download={e.name}>
                        <Icon name="download" size={15} />
                        Download
                      </a>
                    )}
                    {canWrite && (
                      <>
                        <button type="button" class={buttonClass('ghost', true)} onClick={() => setRenaming(e)}>
                          Rename
                        </button>
                        <ActionButton small variant="danger" what={`Delete ${e.name}`} confirm={askRemove(e)} onClick={() => removeEntry(e)}>
                          Delete
                        </ActionButton>
                      </>
                    )}
                  </>
                )}
              >
                {listing.data.truncated && <p class="warn-text small table-note">This folder holds more entries than the node lists at once; only the first {entries.length} are shown.</p>}
              </FileTable>
            )}
          </>
        )}
      </div>

      {mkdirOpen && (
        <NameDialog
          title="New folder"
          label="Folder name"
          submitLabel="Create folder"
          onClose={() => setMkdirOpen(false)}
          onSubmit={async (name) => {
            await post(`${base}?path=${encodeURIComponent(apiPath(joinPath(dir, name)))}`, { op: 'mkdir' });
            toast.success(`Folder ${name} created`);
            setMkdirOpen(false);
            listing.reload();
          }}
        />
      )}
      {renaming && (
        <NameDialog
          title={`Rename ${renaming.name}`}
          label="New name"
          submitLabel="Rename"
          initial={renaming.name}
          onClose={() => setRenaming(null)}
          onSubmit={async (name) => {
            const from = joinPath(dir, renaming.name);
            const to = name.startsWith('/') ? normalizePath(name) : joinPath(dir, name);
            await post(`${base}?path=${encodeURIComponent(apiPath(from))}`, { op: 'rename', to: apiPath(to) });
            toast.success(`${renaming.name} renamed to ${name}`);
            setRenaming(null);
            listing.reload();
          }}
        />
      )}
    </>
  );
}

function NameDialog({
  title,
  label,
  submitLabel,
  initial = '',
  onClose,
  onSubmit,
}: {
  title: string;
  label: string;
  submitLabel: string;
  initial?: string;
  onClose: () => void;
  onSubmit: (name: string) => Promise<void>;
}): JSX.Element {
  const [name, setName] = useState(initial);
  const [busy, setBusy] = useState(false);
  const [error, setError] = useState<string | null>(null);
  const submit = async (e: Event): Promise<void> => {
    e.preventDefault();
    const n = name.trim();
    if (!n || n === '.' || n === '..' || (n.includes('/') && !n.startsWith('/'))) {
      setError('Give a name without slashes (or a full path starting with /).');
      return;
    }
    setBusy(true);
    setError(null);
    try {
      await onSubmit(n);
    } catch (err) {
      setError(errorMessage(err));
      setBusy(false);
    }
  };
  return (
    <Dialog title={title} onClose={onClose} busy={busy}>
      <form onSubmit={(e) => void submit(e)}>
        <div class="field">
          <label for="name-dialog-input">{label}</label>
          <input
            id="name-dialog-input"
            required
            value={name}
            autocomplete="off"
            spellcheck={false}
            onInput={(e) => setName(e.currentTarget.value)}
            onFocus={(e) => {
              const el = e.currentTarget;
              const dot = el.value.lastIndexOf('.');
              el.setSelectionRange(0, dot > 0 ? dot : el.value.length);
            }}
          />
        </div>
        <InlineError>{error}</InlineError>
        <div class="form-actions">
          <button type="button" class={buttonClass('default')} onClick={onClose} disabled={busy}>
            Cancel
          </button>
          <SubmitButton busy={busy}>{submitLabel}</SubmitButton>
        </div>
      </form>
    </Dialog>
  );
}
