/**
 * The agent's policy, summarised for the hub (src/protocol/policy-summary.ts): which sections are
 * on and the allow flags the UI needs, and whether the host requires signed intent, naming its
 * operator keys by fingerprint. The policy file's own path is left out; the bind-mount
 * directories are what the policy itself lists.
 */
import { SUMMARY_SECTIONS, type PolicySummary, type SummarySection } from '../../protocol/policy-summary.ts';
import { operatorKeyFingerprint } from '../../lib/operator-key-fingerprint.ts';
import type { Policy } from './policy-file.ts';

/** The built-in default policy's source starts so (see policy-file.ts), also when the file is missing. */
const DEFAULT_SOURCE = 'the default policy';

export function summarisePolicy(policy: Policy): PolicySummary {
  const sections = Object.fromEntries(SUMMARY_SECTIONS.map((s) => [s, policy.sections[s]])) as Record<SummarySection, boolean>;
  const a = policy.allow;
  return {
    custom: !policy.source.startsWith(DEFAULT_SOURCE),
    sections,
    allow: {
      privileged: a.privileged,
      bindMounts: a.bindMounts === null ? null : [...a.bindMounts],
      bindRoot: a.bindRoot,
      dockerSocket: a.dockerSocket,
      hostNamespaces: a.hostNamespaces,
      devices: a.devices,
      capabilities: [...a.capabilities],
      remoteBuildContexts: a.remoteBuildContexts,
    },
    signedIntent: policy.signedIntent === null ? null : { require: policy.signedIntent.require, operators: policy.signedIntent.operators.map(operatorKeyFingerprint) },
  };
}
