/**
 * "Back up now" for one volume: files a volume-backup job (the host's default repository, or
 * the one typed) and shows it live — its steps and log lines, restic's progress among them — as
 * any job does (job-progress.tsx). Like the CLI, it sends a throwaway age recipient made in this
 * browser, so when the backup makes an escrowed key its recovery code can be shown here once;
 * the identity lives only in this component's memory. On a signed host the job is signed with
 * this browser's key before it is sent.
 */
import type { JSX } from 'preact';
import { useState } from 'preact/hooks';
import type { JobDetail } from '../lib/types.ts';
import { fileVolumeJob, parseRepository } from '../lib/volume-backups.ts';
import { useFormSubmit } from './form-submit.ts';
import { JobProgress } from './job-progress.tsx';
import { InlineError, SubmitButton } from './ui.tsx';

async function revealKey(): Promise<{ identity: string; recipient: string }> {
  const age = await import('age-encryption');
  const identity = await age.generateX25519Identity();
  return { identity, recipient: await age.identityToRecipient(identity) };
}

async function openRecoveryCode(sealed: string, identity: string): Promise<string> {
  const age = await import('age-encryption');
  const d = new age.Decrypter();
  d.addIdentity(identity);
  return d.decrypt(age.armor.decode(sealed), 'text');
}

export function BackupNow({ node, volume, blocked, onDone }: { node: string; volume: string; blocked: string | null; onDone: () => void }): JSX.Element {
  const [repo, setRepo] = useState('');
  const [job, setJob] = useState<{ id: string; identity: string } | null>(null);
  const [code, setCode] = useState<string | null>(null);
  const form = useFormSubmit();

  const submit = (e: Event): void => {
    e.preventDefault();
    void form.run(async () => {
      const { identity, recipient } = await revealKey();
      setCode(null);
      const filed = await fileVolumeJob(node, volume, 'backups', { repository: parseRepository(repo), revealTo: recipient });
      setJob({ id: filed.id, identity });
    });
  };
  const final = (j: JobDetail): void => {
    const sealed = j.result?.volume?.recoveryCodeSealed;
    if (sealed && job) {
      openRecoveryCode(sealed, job.identity).then(setCode, () => setCode(null));
    }
    onDone();
  };

  return (
    <section class="card backup-now" aria-labelledby="backup-now-title">
      <h2 class="card-title" id="backup-now-title">
        Back up now
      </h2>
      <form onSubmit={submit}>
        <div class="field">
          <label for="bn-repo">Repository</label>
          <input
            id="bn-repo"
            class="mono"
            value={repo}
            autocomplete="off"
            spellcheck={false}
            placeholder="the host's default"
            aria-describedby="bn-repo-hint"
            onInput={(e) => setRepo(e.currentTarget.value)}
          />
          <div class="hint" id="bn-repo-hint">
            Blank: the host's default. A host path (/srv/backups/…), <code>hub</code>, or a restic URL.
          </div>
        </div>
        {blocked && (
          <p class="warn-text small" role="note">
            {blocked}
          </p>
        )}
        <InlineError>{form.error}</InlineError>
        <SubmitButton busy={form.busy} disabled={blocked !== null}>
          Back up now
        </SubmitButton>
      </form>
      {code && (
        <div class="recovery-code" role="alert">
          <p>
            <strong>Recovery code</strong> (shown once; give it to the host's owner — the hub holds the repository key only wrapped under it):
          </p>
          <p>
            <code class="break">{code}</code>
          </p>
        </div>
      )}
      {job && <JobProgress key={job.id} id={job.id} heading="h3" onFinal={final} />}
    </section>
  );
}
