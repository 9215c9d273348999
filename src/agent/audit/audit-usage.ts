/** The usage text of `dockfleet agent audit` (kept apart so `dockfleet agent --help` loads nothing else). */
export const AGENT_AUDIT_USAGE = `dockfleet agent audit [--state DIR] [--verify] [--json]

  Shows this host's own audit log (DIR/audit.log): every mutating action the agent executed or
  refused here, who the hub said asked for it and the signing key when there was one.
  --state DIR  the agent's state directory (default ./agent-state)
  --verify     check the hash chain: exit 0 when it holds, 1 naming the first edited, removed or
               reordered entry (its line number and seq)
  --json       one JSON array of the entries (with --verify: one JSON object with the verdict)`;
