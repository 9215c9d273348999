/**
 * One volume's backups (/nodes/NODE/volumes/VOLUME/backups, reached from its Volumes row): the
 * last backup and the last verification as the agent reported them (with the warning the
 * `backup-unverified` alert raises), Back up now with live progress, the snapshots with Restore,
 * and the policy form. Everything goes through the hub's volume routes, which file jobs for the
 * node's agent (restic does the work there). On a host that requires signed intent this browser
 * signs each job with its key (lib/volume-backups.ts); without a key the host lists, the actions
 * are disabled with the reason.
 */
import type { JSX } from 'preact';
import { useCallback, useEffect, useState } from 'preact/hooks';
import { BackupFacts } from '../components/backup-status.tsx';
import { BackupNow } from '../components/backup-now.tsx';
import { BackupPolicyForm } from '../components/backup-policy-form.tsx';
import { BackupSnapshots } from '../components/backup-snapshots.tsx';
import { AsyncView, PageHeader, buttonClass, useAsync, type AsyncState } from '../components/ui.tsx';
import { canChange } from '../lib/access.ts';
import { fleet } from '../lib/live.ts';
import { useStore } from '../lib/store.ts';
import type { Me } from '../lib/types.ts';
import { listSnapshots, loadStatus, parseRepository, repositoryText, useVolumeJobBlock, type SnapshotList } from '../lib/volume-backups.ts';

/** The snapshots call files a job and waits for the agent: asked for once per visit and after each backup,
 * from the policy's repository (else the host's default). */
function useSnapshots(node: string, volume: string, enabled: boolean, repository: string): AsyncState<SnapshotList> | null {
  const state = useAsync(
    (signal) => (enabled ? listSnapshots(node, volume, parseRepository(repository), signal) : Promise.resolve({ repository: null, snapshots: [] })),
    [node, volume, enabled, repository],
  );
  return enabled ? state : null;
}

export function VolumeBackupsPage({ me, node, volume }: { me: Me; node: string; volume: string }): JSX.Element {
  const view = useStore(fleet).nodes?.find((n) => n.name === node);
  const status = useAsync((signal) => loadStatus(node, volume, signal), [node, volume]);
  const writer = canChange(me, node);
  const blocked = useVolumeJobBlock(node);
  const online = view?.status === 'online';
  const snapshotsBlock = !writer
    ? 'Listing snapshots needs an admin or an operator of the node.'
    : (blocked ?? (online ? null : `${node} is ${view?.status ?? 'unknown'}: its snapshots can be listed when it is back.`));
  const policyRepo = repositoryText(status.data?.policy?.repository ?? null);
  const snapshots = useSnapshots(node, volume, snapshotsBlock === null && status.data !== undefined, policyRepo);
  useEffect(() => {
    document.title = `Backups of ${volume} · dockfleet`;
  }, [volume]);

  const refresh = useCallback((): void => {
    status.reload();
    snapshots?.reload();
  }, [status.reload, snapshots?.reload]);
  // Scheduled runs report on the agent's clock: read the status again now and then while the page
  // is open, and soon after a read that failed (a dropped connection).
  const failed = Boolean(status.error);
  useEffect(() => {
    const t = setInterval(() => status.reload(), failed ? 3_000 : 15_000);
    return () => clearInterval(t);
  }, [status.reload, failed]);
  const [policyKey, setPolicyKey] = useState(0);

  return (
    <>
      <PageHeader
        title={
          <>
            Backups of <span class="break">{volume}</span>
          </>
        }
        sub={<>on {node}</>}
      >
        <a class={buttonClass('ghost')} href={`/volumes?node=${encodeURIComponent(node)}`}>
          Volumes
        </a>
      </PageHeader>
      <section class="card backup-state" aria-labelledby="state-title">
        <h2 class="card-title" id="state-title">
          State
        </h2>
        <AsyncView state={status} loadingLabel="Reading the backup state…" errorTitle="Could not read the backup state">
          {(s) => (
            <>
              {!s.policy && (
                <p class="small">
                  <span class="badge badge-muted no-policy">
                    <span class="dot" aria-hidden="true" />
                    no policy
                  </span>{' '}
                  Backups run only when asked.
                </p>
              )}
              <BackupFacts status={s} />
            </>
          )}
        </AsyncView>
      </section>
      {writer && <BackupNow node={node} volume={volume} blocked={blocked} onDone={refresh} />}
      <BackupSnapshots node={node} volume={volume} repository={policyRepo} list={snapshots} status={status.data} blocked={snapshotsBlock} />
      {status.data && (
        <BackupPolicyForm
          key={`${policyKey}:${status.data.policy?.setAt ?? 'none'}`}
          node={node}
          volume={volume}
          policy={status.data.policy}
          blocked={blocked}
          canWrite={writer}
          onSaved={() => {
            setPolicyKey((k) => k + 1);
            status.reload();
          }}
        />
      )}
    </>
  );
}
