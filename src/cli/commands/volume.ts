/**
 * `dockfleet volume backup|snapshots|restore`: volume backups as jobs the node's agent runs with
 * restic (CONTRACT.md, "Backup and recovery"). A backup or restore prints its job id on the last
 * line of stdout; --wait follows the job to its end (exit 0 succeeded, 1 failed, with the
 * reason). A first backup under escrow custody makes the repository's key: its recovery code is
 * sealed by the agent to a one-off age key this command holds in memory, and printed once here.
 *
 * On a node whose policy requires signed intent, with an operator key on this machine (or
 * `--sign`; `--no-sign` never), the job is filed for signing and signed here only when every
 * field of the hub's proposal is what was asked (volume-signing/).
 */
import { parseArgs } from 'node:util';
import { Decrypter, armor, generateX25519Identity, identityToRecipient } from 'age-encryption';
import type { IntentSigner } from '../../lib/intent-keys.ts';
import type { BackupRepository, VolumeJobSpec } from '../../protocol/volume-backup.ts';
import { UsageError, type Command } from '../command.ts';
import { TARGET_HELP, TARGET_OPTIONS, callHub, resolveTarget, type HubTarget } from '../hub-client.ts';
import { signVolumeJob, type VolumeSigning } from '../volume-signing/sign-volume-job.ts';
import type { AskedPolicy, VolumeJobKind } from '../volume-signing/expected-job.ts';
import { chooseSigner } from './stack-sign-choice.ts';
import { readEnvFile } from './stack-files.ts';

const WAIT_POLL_MS = 250;

interface JobDetail {
  id: string;
  state: string;
  error: string | null;
  steps: Array<{ name: string; state: string }>;
  result: { volume?: { repository: string; snapshot: string | null; volume: string | null; escrowedKey?: string; recoveryCodeSealed?: string } } | null;
}

interface SnapshotItem {
  id: string;
  shortId: string;
  time: string;
  hostname: string;
  tags: string[];
  paths: string[];
}

function repository(flag: string | undefined): BackupRepository | null {
  if (flag === undefined) return null;
  if (flag === 'hub') return { kind: 'hub' };
  if (flag.startsWith('/')) return { kind: 'path', path: flag };
  if (/^[a-z0-9]+:/.test(flag)) return { kind: 'url', url: flag };
  throw new UsageError('--repo is an absolute path on the host, a restic repository URL, or "hub"');
}

function volumePath(node: string, volume: string, tail: string): string {
  return `/api/v1/nodes/${encodeURIComponent(node)}/volumes/${encodeURIComponent(volume)}/${tail}`;
}

async function follow(target: HubTarget, id: string): Promise<JobDetail> {
  for (;;) {
    const job = (await callHub(target, 'GET', `/api/v1/jobs/${encodeURIComponent(id)}`)) as JobDetail;
    if (job.state === 'succeeded' || job.state === 'failed') return job;
    await new Promise((r) => setTimeout(r, WAIT_POLL_MS));
  }
}

async function report(job: JobDetail, identity: string | null): Promise<void> {
  const out = job.result?.volume;
  if (out?.recoveryCodeSealed && identity) {
    const d = new Decrypter();
    d.addIdentity(identity);
    const code = await d.decrypt(armor.decode(out.recoveryCodeSealed), 'text');
    process.stdout.write(`recovery code (shown once; give it to the host's owner — the hub holds the key only wrapped under it): ${code}\n`);
  }
  if (job.state === 'failed') throw new Error(`job ${job.id} failed: ${job.error ?? 'no reason given'}`);
  if (out?.snapshot) process.stdout.write(`snapshot ${out.snapshot} of ${out.volume ?? '?'} in ${out.repository}\n`);
}

interface BackupStatus {
  policy: Record<string, unknown> | null;
  lastBackup: { at: string; ok: boolean; snapshot: string | null; bytesAdded: number | null; durationMs: number; error: string | null } | null;
  lastVerified: { at: string; ok: boolean; snapshot: string | null; detail: string } | null;
  lastVerifiedOkAt: string | null;
}

/** The snapshot last verified and the last scheduled one, marked in the list. */
function withStatus(snapshots: SnapshotItem[], status: BackupStatus): Array<SnapshotItem & Record<string, unknown>> {
  return snapshots.map((s) => ({
    ...s,
    ...(status.lastVerified && status.lastVerified.snapshot === s.id ? { verified: { at: status.lastVerified.at, ok: status.lastVerified.ok, detail: status.lastVerified.detail } } : {}),
    ...(status.lastBackup && status.lastBackup.snapshot === s.id ? { backup: { at: status.lastBackup.at, bytesAdded: status.lastBackup.bytesAdded, durationMs: status.lastBackup.durationMs } } : {}),
  }));
}

function statusLines(status: BackupStatus): string {
  const b = status.lastBackup;
  const v = status.lastVerified;
  return (
    `last backup: ${b ? `${b.at} ${b.ok ? `ok, snapshot ${b.snapshot ?? '?'}, ${b.bytesAdded ?? 0} bytes added` : `FAILED: ${b.error ?? ''}`}` : 'none'}\n` +
    `last verified: ${v ? `${v.at} ${v.ok ? `ok (${v.detail}), snapshot ${v.snapshot ?? '?'}` : `FAILED: ${v.detail}`}` : 'never'}\n`
  );
}

/** Snapshots on a signed host: the listing job is signed here, then followed to its result. */
async function signedSnapshots(
  target: HubTarget,
  node: string,
  volume: string,
  repo: BackupRepository | null,
  signer: IntentSigner,
): Promise<{ repository: string | null; snapshots: SnapshotItem[] }> {
  const filed = await fileJob(target, 'volume-snapshots', volumePath(node, volume, 'snapshots'), node, { volume, repository: repo }, { repository: repo }, signer);
  const job = (await follow(target, filed.id)) as JobDetail & { result: { volume?: { snapshots?: SnapshotItem[] } } | null };
  if (job.state === 'failed') throw new Error(`listing the snapshots failed: ${job.error ?? 'no reason given'} (job ${job.id})`);
  return { repository: job.result?.volume?.repository ?? null, snapshots: job.result?.volume?.snapshots ?? [] };
}

function count(flag: string, value: string | undefined): number | undefined {
  if (value === undefined) return undefined;
  if (!/^[1-9]\d{0,3}$/.test(value)) throw new UsageError(`--${flag} must be a number from 1`);
  return Number(value);
}

async function policyCommand(target: HubTarget, node: string, volume: string, repo: BackupRepository | null, values: Record<string, string | boolean | undefined>): Promise<void> {
  const path = volumePath(node, volume, 'backup-policy');
  const str = (name: string): string | undefined => (typeof values[name] === 'string' ? values[name] : undefined);
  const trustHub = values['trust-hub'] === true;
  let out: unknown;
  if (values.off) {
    const signer = await signerFor(values, target, node);
    out = await callHub(target, 'DELETE', signer ? `${path}?sign=true` : path);
    if (signer) await signVolumeJob(target, (out as { job: Filed }).job, { kind: 'volume-policies', node, volume, policy: null, trustHub }, signer);
    if (!values.json) process.stdout.write(`backup policy of ${volume} on ${node} removed\n`);
  } else if (str('every') !== undefined) {
    const retention = { keepLast: count('keep-last', str('keep-last')), keepDaily: count('keep-daily', str('keep-daily')), keepWeekly: count('keep-weekly', str('keep-weekly')) };
    const policy: AskedPolicy = {
      every: str('every')!,
      repository: repo,
      verifyEvery: str('verify-every') ?? '24h',
      retention: Object.fromEntries(Object.entries(retention).filter(([, v]) => v !== undefined)),
    };
    // The repository's credentials: kept by the hub, sealed; outside the signed policy, never shown back.
    const secretFile = str('secret-env-file');
    const secretEnv = secretFile === undefined ? undefined : await readEnvFile(secretFile);
    const signer = await signerFor(values, target, node);
    out = await callHub(target, 'PUT', path, { ...policy, ...(secretEnv ? { secretEnv } : {}), ...(signer ? { sign: true } : {}) });
    if (signer) await signVolumeJob(target, (out as { job: Filed }).job, { kind: 'volume-policies', node, volume, policy, trustHub }, signer);
    if (!values.json) process.stdout.write(`${volume} on ${node}: backed up every ${policy.every}, verified every ${policy.verifyEvery}\n`);
  } else {
    out = await callHub(target, 'GET', path);
    const names = (out as { secretEnvNames?: string[] }).secretEnvNames ?? [];
    if (!values.json)
      process.stdout.write(
        `${JSON.stringify((out as { policy: unknown }).policy)}\n${names.length > 0 ? `secret environment: ${names.join(', ')} (values kept by the hub, not shown)\n` : ''}${statusLines((out as { status: BackupStatus }).status)}`,
      );
  }
  if (values.json) process.stdout.write(`${JSON.stringify(out, null, 2)}\n`);
}

/** A filed job as the hub answers it; `signing` when it was filed for signing. */
interface Filed {
  id: string;
  signing?: VolumeSigning;
}

/** This machine's operator key when the node requires signed intent (stack-sign-choice.ts decides, as for stacks). */
function signerFor(values: Record<string, string | boolean | undefined>, target: HubTarget, node: string): Promise<IntentSigner | null> {
  const pick = (k: string): string | boolean | undefined => values[k];
  return chooseSigner({ sign: pick('sign') as boolean | undefined, 'no-sign': pick('no-sign') as boolean | undefined, key: pick('key') as string | undefined }, target, { deployTo: { node } });
}

/** Files one backup, restore or snapshots job, signed when the node requires it. */
async function fileJob(target: HubTarget, kind: VolumeJobKind, path: string, node: string, spec: VolumeJobSpec, body: Record<string, unknown>, signer: IntentSigner | null): Promise<Filed> {
  const answer = (await callHub(target, 'POST', path, signer ? { ...body, sign: true } : body)) as Filed & { job?: Filed };
  // A signed snapshots call answers {job, signing}; the others the job itself.
  const filed: Filed = answer.job ? { ...answer.job, ...(answer.signing ? { signing: answer.signing } : {}) } : answer;
  if (signer) await signVolumeJob(target, filed, { kind, node, spec }, signer);
  return filed;
}

export const volumeCommand: Command = {
  summary: 'back volumes up with restic, list their snapshots, restore them',
  usage: `dockfleet volume backup NODE VOLUME [--repo PATH|URL|hub] [--keep-last N] [--wait]
dockfleet volume snapshots NODE VOLUME [--repo PATH|URL|hub] [--json]
dockfleet volume restore NODE VOLUME [--snapshot ID] [--to NEWVOLUME] [--repo PATH|URL|hub] [--wait]
dockfleet volume policy NODE VOLUME [--every 24h|03:30] [--keep-last N] [--keep-daily N] [--keep-weekly N]
          [--repo PATH|URL|hub] [--verify-every 24h] [--secret-env-file F] [--off] [--trust-hub] [--json]
        each also takes [--sign | --no-sign] [--key ID]

--repo      the repository (default: the host's own, backups.repository in its policy file)
--wait      follow the job: exit 0 when it succeeded, 1 when it failed (with the reason)
--json      snapshots: an array of {id, shortId, time, hostname, tags, paths}, oldest first; the snapshot
            last verified carries verified {at, ok, detail}, the last scheduled one backup {at, bytesAdded, durationMs}
policy      with --every: the agent backs VOLUME up on its own clock (an interval such as 6h, or a daily
            UTC time such as 03:30), forgets per --keep-*, and test-restores the latest snapshot every
            --verify-every (default 24h); --off removes the policy; neither: shows it and its status
--secret-env-file  policy: KEY=value lines for a URL repository (AWS_SECRET_ACCESS_KEY, …), kept by
            the hub sealed and sent to the agent with the policy; shown back by name only (omitted:
            the ones set before are kept; an empty file removes them)
--to        restore into this volume (created when missing) instead of VOLUME
The host's policy file must have a "backups" section; a volume in use by a running container
is not restored over.
Signing (hosts whose policy requires signed intent): with an operator key on this machine, the
job is signed when NODE requires it (--sign: always; --no-sign: never), after the CLI checked
every field the hub proposes against what was asked; any difference declines the job, naming
the field. A policy job carries the node's whole set: the other volumes' policies must be those
this CLI signed last (--trust-hub signs the hub's after showing them).

${TARGET_HELP}`,
  async run(args) {
    const { values, positionals } = parseArgs({
      args,
      strict: true,
      allowPositionals: true,
      options: {
        ...TARGET_OPTIONS,
        wait: { type: 'boolean' },
        json: { type: 'boolean' },
        repo: { type: 'string' },
        snapshot: { type: 'string' },
        to: { type: 'string' },
        'keep-last': { type: 'string' },
        every: { type: 'string' },
        'keep-daily': { type: 'string' },
        'keep-weekly': { type: 'string' },
        'verify-every': { type: 'string' },
        off: { type: 'boolean' },
        'secret-env-file': { type: 'string' },
        sign: { type: 'boolean' },
        'no-sign': { type: 'boolean' },
        key: { type: 'string' },
        'trust-hub': { type: 'boolean' },
      },
    });
    const [sub, node, volume, ...rest] = positionals;
    if (!sub || !['backup', 'snapshots', 'restore', 'policy'].includes(sub)) throw new UsageError('expected: volume backup|snapshots|restore|policy NODE VOLUME');
    if (!node || !volume || rest.length > 0) throw new UsageError(`expected: volume ${sub} NODE VOLUME`);
    const target = resolveTarget(values);
    const repo = repository(values.repo);
    if (sub !== 'policy' && values['trust-hub']) throw new UsageError('--trust-hub is for volume policy');
    if ((sub !== 'policy' || values.every === undefined) && values['secret-env-file'] !== undefined) throw new UsageError('--secret-env-file is for volume policy with --every');
    if (sub === 'policy') return policyCommand(target, node, volume, repo, values);
    const signer = await signerFor(values, target, node);
    if (sub === 'snapshots') {
      const listed = signer
        ? await signedSnapshots(target, node, volume, repo, signer)
        : ((await callHub(target, 'POST', volumePath(node, volume, 'snapshots'), { repository: repo })) as { repository: string | null; snapshots: SnapshotItem[] });
      const status = (await callHub(target, 'GET', volumePath(node, volume, 'backup-status'))) as BackupStatus;
      if (values.json) {
        process.stdout.write(`${JSON.stringify(withStatus(listed.snapshots, status), null, 2)}\n`);
        return;
      }
      process.stdout.write(statusLines(status));
      if (listed.snapshots.length === 0) {
        process.stdout.write(`no snapshots of ${volume} on ${node} in ${listed.repository ?? 'the repository'}\n`);
        return;
      }
      const rows = [['ID', 'TIME', 'HOST', 'TAGS'], ...listed.snapshots.map((s) => [s.shortId, s.time.replace(/\.\d+/, ''), s.hostname, s.tags.join(',')])];
      const widths = rows[0]!.map((_, i) => Math.max(...rows.map((r) => r[i]!.length)));
      process.stdout.write(
        rows
          .map(
            (r) =>
              `${r
                .map((c, i) => c.padEnd(widths[i]!))
                .join('  ')
                .trimEnd()}\n`,
          )
          .join(''),
      );
      return;
    }
    let filed: { id: string };
    let identity: string | null = null;
    if (sub === 'backup') {
      if (values['keep-last'] !== undefined && !/^[1-9]\d{0,3}$/.test(values['keep-last'])) throw new UsageError('--keep-last must be a number from 1');
      identity = await generateX25519Identity();
      const spec: VolumeJobSpec = {
        volume,
        repository: repo,
        ...(values['keep-last'] ? { retention: { keepLast: Number(values['keep-last']) } } : {}),
        revealTo: await identityToRecipient(identity),
      };
      const { volume: _v, ...body } = spec;
      filed = await fileJob(target, 'volume-backup', volumePath(node, volume, 'backups'), node, spec, body, signer);
    } else {
      const spec: VolumeJobSpec = { volume, repository: repo, ...(values.snapshot ? { snapshot: values.snapshot } : {}), ...(values.to ? { to: values.to } : {}) };
      const { volume: _v, ...body } = spec;
      filed = await fileJob(target, 'volume-restore', volumePath(node, volume, 'restores'), node, spec, body, signer);
    }
    if (!values.wait) {
      if (identity) process.stderr.write("note: a first backup under escrow custody shows its recovery code only with --wait (it stays readable on the host, in the agent's state dir)\n");
      process.stdout.write(`${filed.id}\n`);
      return;
    }
    const job = await follow(target, filed.id);
    await report(job, identity);
    process.stdout.write(`${filed.id}\n`);
  },
};
