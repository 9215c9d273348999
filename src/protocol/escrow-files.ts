/**
 * The names under which a restore job's sealed secrets carry an escrowed repository key and the
 * operator's recovery code to the agent (base64, as job secret files are), which unwraps the
 * key itself (src/agent/backup/backup-keys.ts). Shared by the hub's rebuild and the agent.
 */
export const ESCROW_FILES = Object.freeze({
  wrappedKey: 'dockfleet-escrowed-key',
  recoveryCode: 'dockfleet-recovery-code',
});
