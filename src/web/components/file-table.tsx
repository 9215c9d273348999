/**
 * The file table of the two file browsers (a container's files through the archive API, a
 * volume's files through the agent): a ".." row below the root, one row per entry with name,
 * size, modified time and mode, and the page's own actions per row. Folders link to their own
 * listing; symlinks show their target. Notes (a cut-off listing) go below, as children.
 */
import type { ComponentChildren, JSX } from 'preact';
import { Icon } from './icons.tsx';
import { ago, bytes, dateTime, fileMode } from '../lib/format.ts';

/** What the table shows of an entry, whichever browser listed it. */
export interface FileRow {
  name: string;
  /** The entry's full path (what `href` and the actions are given). */
  path: string;
  kind: 'file' | 'dir' | 'symlink' | 'link' | 'other';
  size: number;
  mode: number | string;
  modified: string | number | null;
  linkTarget?: string | null | undefined;
}

/** The folder above `dir` ("/" for anything directly under the root). */
const parentOf = (dir: string): string => dir.replace(/\/+$/, '').replace(/\/[^/]*$/, '') || '/';

export function FileTable<E>({
  caption,
  dir,
  entries,
  rowOf,
  href,
  actions,
  children,
}: {
  caption: string;
  dir: string;
  entries: readonly E[];
  rowOf: (entry: E) => FileRow;
  /** Where a folder's listing is. */
  href: (path: string) => string;
  actions: (entry: E, row: FileRow) => ComponentChildren;
  children?: ComponentChildren;
}): JSX.Element {
  return (
    <div class="table-wrap">
      <table class="table responsive files-table">
        <caption class="sr-only">{caption}</caption>
        <thead>
          <tr>
            <th scope="col">Name</th>
            <th scope="col">Size</th>
            <th scope="col">Modified</th>
            <th scope="col">Mode</th>
            <th scope="col">
              <span class="sr-only">Actions</span>
            </th>
          </tr>
        </thead>
        <tbody>
          {dir !== '/' && (
            <tr>
              <td data-label="Name" class="cell-name" colSpan={5}>
                <a href={href(parentOf(dir))}>
                  <Icon name="folder" size={16} /> .. <span class="sr-only">(parent folder)</span>
                </a>
              </td>
            </tr>
          )}
          {entries.length === 0 && (
            <tr>
              <td colSpan={5} class="muted">
                This folder is empty.
              </td>
            </tr>
          )}
          {entries.map((entry) => {
            const r = rowOf(entry);
            return (
              <tr key={r.name}>
                <td data-label="Name" class="cell-name">
                  {r.kind === 'dir' ? (
                    <a href={href(r.path)} class="file-link">
                      <Icon name="folder" size={16} />
                      <span class="break">{r.name}</span>
                    </a>
                  ) : (
                    <span class="file-link">
                      <Icon name={r.kind === 'symlink' ? 'link' : 'file'} size={16} />
                      <span class="break">{r.name}</span>
                      {r.kind === 'symlink' && r.linkTarget && <span class="muted small"> → {r.linkTarget}</span>}
                      {r.kind === 'other' && <span class="muted small"> (special file)</span>}
                    </span>
                  )}
                </td>
                <td data-label="Size">{r.kind === 'dir' ? '—' : bytes(r.size)}</td>
                <td data-label="Modified" title={dateTime(r.modified)}>
                  {ago(r.modified)}
                </td>
                <td data-label="Mode" class="mono small">
                  {fileMode(r.mode, r.kind)}
                </td>
                <td class="cell-actions">
                  <div class="row-actions">{actions(entry, r)}</div>
                </td>
              </tr>
            );
          })}
        </tbody>
      </table>
      {children}
    </div>
  );
}
