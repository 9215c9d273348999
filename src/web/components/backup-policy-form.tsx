/**
 * A volume's backup policy: how often (an interval or a daily UTC time), what to keep (last,
 * daily, weekly), where (the host's default, a path, `hub` or a restic URL) and how often to
 * prove the latest snapshot restores, a URL repository's credentials (backup-credentials.tsx:
 * write-only, only their names shown); or off. Saving PUTs the policy (DELETE for off), and the
 * hub sends the node's whole set to its agent as a volume-policies job; the hub's words on a
 * bad value are shown as they come.
 */
import type { JSX } from 'preact';
import { useState } from 'preact/hooks';
import { loadPolicySecretNames, parseRepository, repositoryText, retentionText, saveVolumePolicy, type BackupRetention, type VolumeBackupPolicy } from '../lib/volume-backups.ts';
import { confirmAction } from './dialog.tsx';
import { useFormSubmit } from './form-submit.ts';
import { toast } from './toasts.tsx';
import { InlineError, SubmitButton, buttonClass, useAsync } from './ui.tsx';
import { BackupCredentials, credentialsToSend, type CredentialRow } from './backup-credentials.tsx';

const COUNT = /^[1-9][0-9]{0,3}$/;

function Field({ id, label, value, set, hint, placeholder }: { id: string; label: string; value: string; set: (v: string) => void; hint?: string; placeholder?: string }): JSX.Element {
  return (
    <div class="field">
      <label for={id}>{label}</label>
      <input
        id={id}
        class="mono"
        value={value}
        placeholder={placeholder}
        autocomplete="off"
        spellcheck={false}
        {...(hint ? { 'aria-describedby': `${id}-hint` } : {})}
        onInput={(e) => set(e.currentTarget.value)}
      />
      {hint && (
        <div class="hint" id={`${id}-hint`}>
          {hint}
        </div>
      )}
    </div>
  );
}

function retentionFrom(fields: Array<[keyof BackupRetention, string, string]>): BackupRetention {
  const out: BackupRetention = {};
  for (const [key, label, text] of fields) {
    const t = text.trim();
    if (t === '') continue;
    if (!COUNT.test(t)) throw new Error(`${label}: a whole number from 1 to 9999, or blank.`);
    out[key] = Number(t);
  }
  return out;
}

export function BackupPolicyForm({
  node,
  volume,
  policy,
  blocked,
  canWrite,
  onSaved,
}: {
  node: string;
  volume: string;
  policy: VolumeBackupPolicy | null;
  blocked: string | null;
  canWrite: boolean;
  onSaved: () => void;
}): JSX.Element {
  const [every, setEvery] = useState(policy?.every ?? '24h');
  const [keepLast, setKeepLast] = useState(String(policy?.retention.keepLast ?? ''));
  const [keepDaily, setKeepDaily] = useState(String(policy?.retention.keepDaily ?? '7'));
  const [keepWeekly, setKeepWeekly] = useState(String(policy?.retention.keepWeekly ?? '4'));
  const [repo, setRepo] = useState(repositoryText(policy?.repository ?? null));
  const [verifyEvery, setVerifyEvery] = useState(policy?.verifyEvery ?? '24h');
  const [credentials, setCredentials] = useState<CredentialRow[]>([]);
  const [removeCredentials, setRemoveCredentials] = useState(false);
  // Only names: the hub never answers with a credential's value.
  const kept = useAsync((signal) => (policy ? loadPolicySecretNames(node, volume, signal) : Promise.resolve([])), [node, volume, policy?.setAt]);
  const keptNames = kept.data ?? (kept.error ? [] : null);
  const form = useFormSubmit();
  const disabled = blocked !== null || !canWrite;

  const save = (e: Event): void => {
    e.preventDefault();
    void form.run(async () => {
      const retention = retentionFrom([
        ['keepLast', 'Keep last', keepLast],
        ['keepDaily', 'Keep daily', keepDaily],
        ['keepWeekly', 'Keep weekly', keepWeekly],
      ]);
      const secretEnv = credentialsToSend(credentials, removeCredentials);
      const body = { every: every.trim(), retention, repository: parseRepository(repo), verifyEvery: verifyEvery.trim() || '24h', ...(secretEnv ? { secretEnv } : {}) };
      await saveVolumePolicy(node, volume, body);
      // Write-only: forgotten here once the hub has them.
      setCredentials([]);
      setRemoveCredentials(false);
      toast.success(`Backup policy of ${volume} saved: every ${body.every}, ${retentionText(retention)}`);
      onSaved();
    });
  };
  const turnOff = async (): Promise<void> => {
    const ok = await confirmAction({
      title: 'Turn scheduled backups off?',
      body: (
        <p>
          {volume} on {node} is no longer backed up or verified on a schedule. Its snapshots stay in the repository.
        </p>
      ),
      confirmLabel: 'Turn off',
      danger: true,
    });
    if (!ok) return;
    await form.run(async () => {
      await saveVolumePolicy(node, volume, null);
      toast.success(`Scheduled backups of ${volume} turned off`);
      onSaved();
    });
  };

  return (
    <section class="card backup-policy" aria-labelledby="policy-title">
      <h2 class="card-title" id="policy-title">
        Policy
      </h2>
      <p class="small">
        {policy ? (
          <>
            Every <strong>{policy.every}</strong>, {retentionText(policy.retention)}, verified every {policy.verifyEvery}, to {repositoryText(policy.repository) || "the host's default repository"}.
          </>
        ) : (
          <span class="muted">No policy: this volume is backed up only when asked.</span>
        )}
      </p>
      <form onSubmit={save} aria-label={`Backup policy of ${volume}`}>
        <fieldset disabled={disabled} style={{ border: 0, padding: 0, margin: 0, minWidth: 0 }}>
          <div class="field-row">
            <Field id="pol-every" label="Every" value={every} set={setEvery} placeholder="24h" hint="An interval (30m, 6h, 7d) or a daily UTC time (03:30)." />
            <Field id="pol-verify" label="Verify every" value={verifyEvery} set={setVerifyEvery} placeholder="24h" hint="A test restore of the latest snapshot." />
          </div>
          <div class="field-row">
            <Field id="pol-keep-last" label="Keep last" value={keepLast} set={setKeepLast} />
            <Field id="pol-keep-daily" label="Keep daily" value={keepDaily} set={setKeepDaily} />
            <Field id="pol-keep-weekly" label="Keep weekly" value={keepWeekly} set={setKeepWeekly} />
          </div>
          <Field
            id="pol-repo"
            label="Policy repository"
            value={repo}
            set={setRepo}
            placeholder="the host's default"
            hint="Blank: the host's default. A host path, hub, or a restic URL (s3:…, b2:…, rest:…; its credentials below)."
          />
          <BackupCredentials rows={credentials} setRows={setCredentials} kept={keptNames} remove={removeCredentials} setRemove={setRemoveCredentials} />
        </fieldset>
        {blocked && (
          <p class="warn-text small" role="note">
            {blocked}
          </p>
        )}
        {!canWrite && (
          <p class="muted small" role="note">
            Only an admin or an operator of {node} changes backup policies.
          </p>
        )}
        <InlineError>{form.error}</InlineError>
        <div class="form-actions">
          <SubmitButton busy={form.busy} disabled={disabled}>
            {policy ? 'Save policy' : 'Turn on scheduled backups'}
          </SubmitButton>
          {policy && (
            <button type="button" class={buttonClass('danger')} onClick={() => void turnOff()} disabled={disabled || form.busy}>
              Turn off
            </button>
          )}
        </div>
      </form>
    </section>
  );
}
