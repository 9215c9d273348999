/**
 * A URL repository's credentials in the backup policy form (`secretEnv`: restic's own
 * environment variables such as AWS_ACCESS_KEY_ID, AWS_SECRET_ACCESS_KEY, B2_ACCOUNT_KEY).
 * Name/value rows, values in password inputs; the hub seals them and never shows them again, so
 * only the names it says it keeps are shown. New rows replace the kept set when the policy is
 * saved; none keeps it; "Remove" empties it.
 */
import type { JSX } from 'preact';
import { buttonClass } from './ui.tsx';

export interface CredentialRow {
  name: string;
  value: string;
}

/** The hub's rule for a variable name (protocol/volume-backup.ts). */
const ENV_NAME = /^[A-Z][A-Z0-9_]{0,63}$/;
const MAX_VARIABLES = 32;

/**
 * What to send as `secretEnv`: undefined (keep what the hub holds) when no row is filled and
 * removal was not asked; `{}` to remove; else the rows. Throws in words on a bad row.
 */
export function credentialsToSend(rows: readonly CredentialRow[], remove: boolean): Record<string, string> | undefined {
  const filled = rows.filter((r) => r.name.trim() !== '' || r.value !== '');
  if (filled.length === 0) return remove ? {} : undefined;
  const env: Record<string, string> = {};
  for (const r of filled) {
    const name = r.name.trim();
    if (!ENV_NAME.test(name)) throw new Error(`Credential ${JSON.stringify(name)}: names are capital letters, digits and underscores, starting with a letter (AWS_ACCESS_KEY_ID).`);
    if (r.value === '') throw new Error(`Credential ${name}: enter its value (kept values are never shown, so a new set is entered whole).`);
    if (name in env) throw new Error(`Credential ${name} is given twice.`);
    env[name] = r.value;
  }
  if (Object.keys(env).length > MAX_VARIABLES) throw new Error(`At most ${MAX_VARIABLES} credentials.`);
  return env;
}

export function BackupCredentials({
  rows,
  setRows,
  kept,
  remove,
  setRemove,
}: {
  rows: CredentialRow[];
  setRows: (update: (rows: CredentialRow[]) => CredentialRow[]) => void;
  /** The names the hub keeps for this policy (null while unknown). */
  kept: string[] | null;
  remove: boolean;
  setRemove: (v: boolean) => void;
}): JSX.Element {
  const edit = (i: number, patch: Partial<CredentialRow>): void => setRows((all) => all.map((r, j) => (j === i ? { ...r, ...patch } : r)));
  return (
    <fieldset class="field backup-credentials" aria-describedby="cred-hint">
      <legend>Repository credentials</legend>
      <p class="hint" id="cred-hint">
        For a URL repository: restic's environment variables (AWS_ACCESS_KEY_ID, AWS_SECRET_ACCESS_KEY, B2_ACCOUNT_KEY, …). Encrypted at the hub, sent only to this node's agent with its policies, and
        never shown again.
      </p>
      <p class="small kept-credentials">
        {kept === null ? (
          <span class="muted">Reading which credentials the hub keeps…</span>
        ) : kept.length === 0 ? (
          <>
            Credentials kept: <strong>none</strong>.
          </>
        ) : (
          <>
            Credentials kept: <span class="mono">{kept.join(', ')}</span> (values not shown). Saving without new rows keeps them; new rows replace them all.
          </>
        )}
      </p>
      {rows.map((r, i) => (
        <div class="secret-row" key={i}>
          <label class="sr-only" for={`cred-name-${i}`}>
            Credential {i + 1} name
          </label>
          <input id={`cred-name-${i}`} class="mono" placeholder="AWS_ACCESS_KEY_ID" value={r.name} autocomplete="off" spellcheck={false} onInput={(e) => edit(i, { name: e.currentTarget.value })} />
          <label class="sr-only" for={`cred-value-${i}`}>
            Credential {i + 1} value
          </label>
          <input id={`cred-value-${i}`} type="password" placeholder="value" value={r.value} autocomplete="new-password" onInput={(e) => edit(i, { value: e.currentTarget.value })} />
          <button type="button" class={buttonClass('ghost', true)} onClick={() => setRows((all) => all.filter((_, j) => j !== i))}>
            Remove<span class="sr-only"> credential {i + 1}</span>
          </button>
        </div>
      ))}
      <div class="form-actions">
        <button type="button" class={buttonClass('default', true)} onClick={() => setRows((all) => [...all, { name: '', value: '' }])}>
          Add a credential
        </button>
        {kept !== null && kept.length > 0 && (
          <label class="check small">
            <input type="checkbox" checked={remove} onChange={(e) => setRemove(e.currentTarget.checked)} /> Remove the kept credentials
          </label>
        )}
      </div>
    </fieldset>
  );
}
