/**
 * A volume's snapshots, as the snapshots call lists them from the repository (a read the agent
 * carries out as a job, so it is asked for, not polled), newest first, the last verified and
 * the last scheduled one marked; and Restore: a snapshot into the same volume (the host refuses
 * while a running container uses it, and the job says so) or into a new volume, followed live.
 */
import type { JSX } from 'preact';
import { useState } from 'preact/hooks';
import { ago, dateTime } from '../lib/format.ts';
import { fileVolumeJob, parseRepository, type BackupStatus, type SnapshotList, type SnapshotSummary } from '../lib/volume-backups.ts';
import { Dialog } from './dialog.tsx';
import { useFormSubmit } from './form-submit.ts';
import { JobProgress } from './job-progress.tsx';
import { AsyncView, InlineError, Loading, SubmitButton, buttonClass, type AsyncState } from './ui.tsx';

const VOLUME_NAME = /^[a-zA-Z0-9][a-zA-Z0-9_.-]{0,254}$/;

function RestoreDialog({
  node,
  volume,
  snapshot,
  repository,
  onClose,
  onFiled,
}: {
  node: string;
  volume: string;
  snapshot: SnapshotSummary;
  repository: string;
  onClose: () => void;
  onFiled: (id: string) => void;
}): JSX.Element {
  const [into, setInto] = useState<'same' | 'new'>('new');
  const [to, setTo] = useState(`${volume}-restored`);
  const form = useFormSubmit();
  const submit = (e: Event): void => {
    e.preventDefault();
    void form.run(async () => {
      if (into === 'new' && !VOLUME_NAME.test(to.trim())) throw new Error('A volume name uses letters, digits, "_", "." and "-", and starts with a letter or digit.');
      if (into === 'new' && to.trim() === volume) throw new Error(`That is ${volume} itself: choose "Into ${volume}" to restore over it.`);
      const filed = await fileVolumeJob(node, volume, 'restores', {
        repository: parseRepository(repository),
        snapshot: snapshot.id,
        ...(into === 'new' ? { to: to.trim() } : {}),
      });
      onFiled(filed.id);
      onClose();
    });
  };
  return (
    <Dialog title={`Restore snapshot ${snapshot.shortId}`} onClose={onClose} busy={form.busy}>
      <form onSubmit={submit}>
        <p class="small">
          Snapshot <code>{snapshot.shortId}</code> of <strong>{volume}</strong>, taken {dateTime(snapshot.time)}.
        </p>
        <fieldset class="field">
          <legend>Restore into</legend>
          <label class="check">
            <input type="radio" name="restore-into" checked={into === 'new'} onChange={() => setInto('new')} /> A new volume
          </label>
          <label class="check">
            <input type="radio" name="restore-into" checked={into === 'same'} onChange={() => setInto('same')} /> {volume} itself (its files are replaced; refused while a running container uses it)
          </label>
        </fieldset>
        {into === 'new' && (
          <div class="field">
            <label for="restore-to">New volume name</label>
            <input id="restore-to" class="mono" value={to} autocomplete="off" spellcheck={false} onInput={(e) => setTo(e.currentTarget.value)} />
          </div>
        )}
        <InlineError>{form.error}</InlineError>
        <div class="form-actions">
          <button type="button" class={buttonClass('default')} onClick={onClose} disabled={form.busy}>
            Cancel
          </button>
          <SubmitButton busy={form.busy} variant={into === 'same' ? 'danger' : 'primary'}>
            Restore
          </SubmitButton>
        </div>
      </form>
    </Dialog>
  );
}

function marks(s: SnapshotSummary, status: BackupStatus | undefined): JSX.Element | null {
  const v = status?.lastVerified?.snapshot === s.id ? status.lastVerified : null;
  const b = status?.lastBackup?.snapshot === s.id;
  if (!v && !b) return null;
  return (
    <>
      {b && <span class="chip">last scheduled</span>}
      {v && (
        <span class={`badge badge-${v.ok ? 'ok' : 'bad'}`} title={v.detail}>
          <span class="dot" aria-hidden="true" />
          {v.ok ? 'verified' : 'verification failed'}
        </span>
      )}
    </>
  );
}

export function BackupSnapshots({
  node,
  volume,
  repository,
  list,
  status,
  blocked,
}: {
  node: string;
  volume: string;
  repository: string;
  list: AsyncState<SnapshotList> | null;
  status: BackupStatus | undefined;
  blocked: string | null;
}): JSX.Element {
  const [restoring, setRestoring] = useState<SnapshotSummary | null>(null);
  const [jobs, setJobs] = useState<string[]>([]);
  return (
    <section class="card backup-snapshots" aria-labelledby="snapshots-title">
      <div class="card-head">
        <h2 class="card-title" id="snapshots-title">
          Snapshots
        </h2>
        {list && (
          <button type="button" class={buttonClass('ghost', true)} onClick={list.reload} disabled={list.loading} aria-busy={list.loading ? 'true' : undefined}>
            Refresh
          </button>
        )}
      </div>
      {!list ? (
        blocked ? (
          <p class="muted small" role="note">
            {blocked}
          </p>
        ) : (
          <Loading label="Reading the backup state…" />
        )
      ) : (
        <AsyncView state={list} loadingLabel="Asking the host for the snapshots…" errorTitle="Could not list the snapshots">
          {(l) =>
            l.snapshots.length === 0 ? (
              <p class="muted small">
                No snapshots of {volume} in {l.repository ?? 'the repository'} yet.
              </p>
            ) : (
              <div class="table-wrap">
                <table class="table responsive snapshot-table">
                  <caption class="sr-only">
                    Snapshots of {volume} in {l.repository ?? 'the repository'}, newest first
                  </caption>
                  <thead>
                    <tr>
                      <th scope="col">ID</th>
                      <th scope="col">Taken</th>
                      <th scope="col">Host</th>
                      <th scope="col">Tags</th>
                      <th scope="col">
                        <span class="sr-only">Actions</span>
                      </th>
                    </tr>
                  </thead>
                  <tbody>
                    {[...l.snapshots].reverse().map((s) => (
                      <tr key={s.id}>
                        <td data-label="ID">
                          <code>{s.shortId}</code> {marks(s, status)}
                        </td>
                        <td data-label="Taken">
                          <span title={dateTime(s.time)}>{ago(s.time)}</span>
                        </td>
                        <td data-label="Host">{s.hostname}</td>
                        <td data-label="Tags" class="small break">
                          {s.tags.join(', ') || '—'}
                        </td>
                        <td class="cell-actions">
                          <button type="button" class={buttonClass('ghost', true)} aria-label={`Restore snapshot ${s.shortId}`} onClick={() => setRestoring(s)}>
                            Restore…
                          </button>
                        </td>
                      </tr>
                    ))}
                  </tbody>
                </table>
                <p class="muted small">In {l.repository ?? 'the repository'}.</p>
              </div>
            )
          }
        </AsyncView>
      )}
      {jobs.map((id) => (
        <JobProgress key={id} id={id} heading="h3" />
      ))}
      {restoring && (
        <RestoreDialog node={node} volume={volume} snapshot={restoring} repository={repository} onClose={() => setRestoring(null)} onFiled={(id) => setJobs((j) => [id, ...j].slice(0, 3))} />
      )}
    </section>
  );
}
