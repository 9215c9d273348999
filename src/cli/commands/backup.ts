/**
 * `dockfleet backup` and `dockfleet restore`: the hub's data directory to one encrypted archive
 * and back (src/hub/backup/). Both work on the hub's machine, on files: a running hub keeps serving
 * while it is backed up; a restore writes nothing unless the whole archive checks out.
 */
import { parseArgs } from 'node:util';
import { createHubBackup } from '../../hub/backup/hub-backup.ts';
import { restoreHubBackup } from '../../hub/backup/hub-restore.ts';
import { loadMasterKey } from '../../hub/backup/master-key.ts';
import { openWithFrom, sealToFrom } from '../../hub/backup/backup-secrets.ts';
import { UsageError, type Command } from '../command.ts';

export const backupCommand: Command = {
  summary: "write the hub's state to one encrypted archive (the hub may keep running)",
  usage: `dockfleet backup --data DIR --out FILE [--recipient AGE_KEY] [--no-master-key] [--master-key FILE]

Copies the hub's database with SQLite's online backup (no downtime), its CA and certificates
(keys sealed), admin.token, the ACME account and the other files of DIR, with a manifest of
every member's size and SHA-256, into one age-encrypted archive. FILE appears only when complete.
Volume backups under DIR/restic are not included (they are restic's own encrypted repositories).

  --data DIR          the hub's state (default ./data)
  --out FILE          the archive to write (not inside DIR)
  --recipient AGE_KEY encrypt to this age recipient (age1…) instead of a passphrase
                      (otherwise the passphrase comes from DOCKFLEET_BACKUP_PASSPHRASE, or the file named
                      by DOCKFLEET_BACKUP_PASSPHRASE_FILE)
  --no-master-key     leave the hub's master key out: the archive alone then opens none of the hub's
                      sealed keys and secrets, and the key must be kept and brought back apart
  --master-key FILE   where the master key is, as for \`dockfleet hub\``,
  async run(args) {
    const { values, positionals } = parseArgs({
      args,
      strict: true,
      allowPositionals: true,
      options: { data: { type: 'string' }, out: { type: 'string' }, recipient: { type: 'string' }, 'no-master-key': { type: 'boolean' }, 'master-key': { type: 'string' } },
    });
    if (positionals.length > 0) throw new UsageError(`unexpected ${positionals[0]}`);
    if (values.out === undefined) throw new UsageError('--out FILE is required');
    const dataDir = values.data ?? './data';
    const sealTo = await sealToFrom({ recipient: values.recipient ?? null, env: process.env });
    const masterKey = values['no-master-key'] ? null : (await loadMasterKey({ dataDir, file: values['master-key'] ?? null, create: false })).key;
    const result = await createHubBackup({ dataDir, out: values.out, sealTo, masterKey });
    for (const path of result.skipped) process.stderr.write(`dockfleet backup: left out ${path} (not a regular file)\n`);
    process.stdout.write(
      `backup written: ${result.file} (${result.size} bytes; ${result.manifest.members.length} members; schema ${result.manifest.schemaVersion}; ` +
        `master key ${result.manifest.masterKeyIncluded ? 'included' : 'left out'}; encrypted to ${sealTo.kind === 'passphrase' ? 'a passphrase' : 'an age recipient'})\n`,
    );
  },
};

export const restoreCommand: Command = {
  summary: 'restore a hub backup archive into a new data directory (writes nothing unless all of it verifies)',
  usage: `dockfleet restore FILE --data NEWDIR [--identity FILE] [--master-key FILE]

Decrypts FILE and checks all of it before anything is in place: the manifest (a known format and
schema), every member's size and SHA-256, no member outside the manifest, SQLite's integrity
check, the audit chain. An older database schema is migrated, a newer one refused. Then NEWDIR
appears in one step (it must not exist, or be empty), and the master key, if the archive holds
it, is written where the hub looks for it (NEWDIR.master.key beside NEWDIR, 0600; never over a
different key). Start the hub on NEWDIR at the old address and the agents reconnect as before.

  --data NEWDIR       the data directory to create
  --identity FILE     an age identity file (AGE-SECRET-KEY-1…) for an archive made with --recipient
                      (otherwise the passphrase comes from DOCKFLEET_BACKUP_PASSPHRASE or
                      DOCKFLEET_BACKUP_PASSPHRASE_FILE)
  --master-key FILE   write the archive's master key here instead (start the hub with the same flag)`,
  async run(args) {
    const { values, positionals } = parseArgs({
      args,
      strict: true,
      allowPositionals: true,
      options: { data: { type: 'string' }, identity: { type: 'string' }, 'master-key': { type: 'string' } },
    });
    if (positionals.length !== 1) throw new UsageError('give the archive: dockfleet restore FILE --data NEWDIR');
    if (values.data === undefined) throw new UsageError('--data NEWDIR is required');
    const openWith = await openWithFrom({ identityFile: values.identity ?? null, env: process.env });
    const result = await restoreHubBackup({ file: positionals[0]!, dataDir: values.data, openWith, masterKeyFile: values['master-key'] ?? null });
    if (result.migrated.length > 0) process.stdout.write(`database migrated from ${result.manifest.schemaVersion}: ${result.migrated.join(', ')}\n`);
    process.stdout.write(`audit chain holds: ${result.audit.rows} rows, ${result.audit.entries} chain entries\n`);
    if (result.masterKeyFile !== null) process.stdout.write(`master key: ${result.masterKeyFile}\n`);
    if (result.masterKeyMissing) {
      process.stdout.write('master key: not in the archive; start the hub with the key it was sealed under (--master-key FILE, DOCKFLEET_MASTER_KEY, or NEWDIR.master.key)\n');
    }
    process.stdout.write(`restored: ${result.dataDir} (made ${result.manifest.createdAt} by dockfleet ${result.manifest.dockfleetVersion} for ${result.manifest.hub.url ?? 'a hub'})\n`);
  },
};
