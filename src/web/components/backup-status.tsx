/**
 * A volume's backup state in words: its last backup (when, ok or failed, which snapshot), its
 * last verification (when, ok or what differed), a warning when the last good verification is
 * over a day old (the `backup-unverified` alert's rule), and "no policy" when none is set.
 * `BackupSummary` is the compact form for a Volumes row (it reads the status itself);
 * `BackupFacts` the full one for the volume's backups page.
 */
import type { JSX } from 'preact';
import { ago, dateTime, shortId } from '../lib/format.ts';
import { backupsHref, loadRowStatus, unverifiedReason, type BackupStatus } from '../lib/volume-backups.ts';
import { useAsync } from './ui.tsx';

function When({ at }: { at: string }): JSX.Element {
  return <span title={dateTime(at)}>{ago(at)}</span>;
}

export function UnverifiedBadge({ status }: { status: BackupStatus }): JSX.Element | null {
  const reason = unverifiedReason(status);
  if (!reason) return null;
  return (
    <span class="badge badge-warn backup-unverified" title={reason}>
      <span class="dot" aria-hidden="true" />
      not verified for a day<span class="sr-only">: {reason}</span>
    </span>
  );
}

function LastBackup({ status }: { status: BackupStatus }): JSX.Element {
  const b = status.lastBackup;
  if (!b) return <span class="muted">no scheduled backup yet</span>;
  return (
    <>
      <span class={`badge badge-${b.ok ? 'ok' : 'bad'}`}>
        <span class="dot" aria-hidden="true" />
        {b.ok ? 'ok' : 'failed'}
      </span>{' '}
      <When at={b.at} />
      {b.snapshot ? (
        <>
          {' '}
          · snapshot <code>{shortId(b.snapshot)}</code>
        </>
      ) : null}
      {!b.ok && b.error && <div class="small bad-text break">{b.error}</div>}
    </>
  );
}

function LastVerified({ status }: { status: BackupStatus }): JSX.Element {
  const v = status.lastVerified;
  if (!v) return <span class="muted">never verified</span>;
  return (
    <>
      <span class={`badge badge-${v.ok ? 'ok' : 'bad'}`}>
        <span class="dot" aria-hidden="true" />
        {v.ok ? 'verified' : 'failed'}
      </span>{' '}
      <When at={v.at} />
      {v.snapshot ? (
        <>
          {' '}
          · snapshot <code>{shortId(v.snapshot)}</code>
        </>
      ) : null}
      {!v.ok && <div class="small break verify-detail">{v.detail}</div>}
      {!v.ok && status.lastVerifiedOkAt && (
        <div class="small muted">
          last verified ok <When at={status.lastVerifiedOkAt} />
        </div>
      )}
    </>
  );
}

/** The full facts, as a definition list. */
export function BackupFacts({ status }: { status: BackupStatus }): JSX.Element {
  return (
    <dl class="kv backup-facts">
      <div>
        <dt>Last backup</dt>
        <dd class="last-backup">
          <LastBackup status={status} />
        </dd>
      </div>
      <div>
        <dt>Last verified</dt>
        <dd class="last-verified">
          <LastVerified status={status} /> <UnverifiedBadge status={status} />
        </dd>
      </div>
    </dl>
  );
}

/** One Volumes row's backup cell: reads the volume's status and links to its backups page. */
export function BackupSummary({ node, volume }: { node: string; volume: string }): JSX.Element {
  const state = useAsync((signal) => loadRowStatus(node, volume, signal), [node, volume]);
  const s = state.data;
  const link = (
    <a href={backupsHref(node, volume)} aria-label={`Backups of ${volume} on ${node}`}>
      Backups
    </a>
  );
  if (!s)
    return (
      <div class="backup-summary small">
        {state.error ? <span class="muted">status unavailable</span> : <span class="muted">…</span>} {link}
      </div>
    );
  return (
    <div class="backup-summary small">
      {!s.policy && <span class="muted">no policy</span>}
      {s.lastBackup && (
        <div>
          backup <span class={s.lastBackup.ok ? '' : 'bad-text'}>{s.lastBackup.ok ? 'ok' : 'failed'}</span> <When at={s.lastBackup.at} />
        </div>
      )}
      {s.lastVerified && (
        <div>
          verified <span class={s.lastVerified.ok ? '' : 'bad-text'}>{s.lastVerified.ok ? 'ok' : 'failed'}</span> <When at={s.lastVerified.at} />
        </div>
      )}
      <UnverifiedBadge status={s} />
      <div>{link}</div>
    </div>
  );
}
