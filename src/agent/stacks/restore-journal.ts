/**
 * Undoing an apply from its journal: the containers it created are removed, volumes it
 * snapshotted are copied back from their snapshots, the old revision's containers it set
 * aside are renamed back and started again, and the networks and
 * volumes it made are removed. Every step tolerates having been done already, so a restore
 * cut short by a crash is simply run again.
 */
import type { JournalFile } from './desired-state.ts';
import type { StackEngine } from './stack-engine.ts';
import { restoreVolumes } from './volume-snapshots.ts';

export async function restoreJournal(engine: StackEngine, stack: string, journal: JournalFile, log: (line: string) => void): Promise<void> {
  for (const id of journal.paused) await engine.call('POST', `/containers/${id}/unpause`);
  for (const name of journal.created.containers) {
    const answer = await engine.call('DELETE', `/containers/${encodeURIComponent(name)}?force=1&v=1`);
    if (answer.status !== 204 && answer.status !== 404) log(`could not remove ${name}: ${answer.message}`);
  }
  await restoreVolumes(engine, stack, journal.volumes, log);
  for (const old of journal.retired) {
    if (old.renamedTo !== null) {
      const info = await engine.inspect('containers', old.id);
      if (info && String(info.Name).replace(/^\//, '') !== old.name) {
        await engine.must('POST', `/containers/${old.id}/rename?name=${encodeURIComponent(old.name)}`);
      }
    }
    if (old.wasRunning) {
      const answer = await engine.call('POST', `/containers/${old.id}/start`);
      if (answer.status !== 204 && answer.status !== 304) log(`could not start ${old.name} again: ${answer.message}`);
      else log(`restored ${old.name}`);
    }
  }
  for (const name of journal.created.networks) {
    const answer = await engine.call('DELETE', `/networks/${encodeURIComponent(name)}`);
    if (answer.status !== 204 && answer.status !== 404) log(`could not remove network ${name}: ${answer.message}`);
  }
  for (const name of journal.created.volumes) {
    const answer = await engine.call('DELETE', `/volumes/${encodeURIComponent(name)}`);
    if (answer.status !== 204 && answer.status !== 404) log(`could not remove volume ${name}: ${answer.message}`);
  }
}
