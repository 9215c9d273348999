/**
 * Whether `dockfleet stack deploy|rollback|rm` signs the jobs it files (issue 13), and the local
 * half of a signed deploy. Signed when this machine keeps an operator key and a target node's
 * policy summary says it requires signed intent; `--sign` always (an error without a key),
 * `--no-sign` never. The summary is the hub's word: a hub that hides it only gets its unsigned
 * jobs refused by the host.
 */
import type { IntentSigner } from '../../lib/intent-keys.ts';
import { DockfleetError } from '../../protocol/errors.ts';
import type { StackTarget } from '../../protocol/stack-api.ts';
import { healthGate, type HealthGate, type StackProject } from '../../protocol/stacks.ts';
import { parseCompose, type ComposeInput } from '../../hub/stacks/compose/parse-compose.ts';
import { UsageError } from '../command.ts';
import { callHub, type HubTarget } from '../hub-client.ts';
import { loadOperatorSigner } from '../intent/operator-key-file.ts';
import type { JobSecretsShape } from '../stack-signing/signed-revisions.ts';

interface NodeSummary {
  name: string;
  labels?: Record<string, string> | null;
  policy?: { signedIntent?: unknown } | null;
}

export async function chooseSigner(
  values: { sign?: boolean | undefined; 'no-sign'?: boolean | undefined; key?: string | undefined },
  target: HubTarget,
  on: { deployTo: StackTarget | { selector: string } } | { stack: string },
): Promise<IntentSigner | null> {
  if (values.sign && values['no-sign']) throw new UsageError('give --sign or --no-sign, not both');
  if (values['no-sign']) return null;
  const key = values.key === undefined ? {} : { key: values.key };
  if (values.sign) {
    const signer = loadOperatorSigner(key);
    if (!signer) throw new DockfleetError('bad_request', '--sign needs an operator key on this machine: create one with `dockfleet operator-key create`');
    return signer;
  }
  let signer: IntentSigner | null;
  let unusable: unknown = null;
  try {
    signer = loadOperatorSigner(key);
  } catch (err) {
    // A key here that cannot be used (several and no default, a loose file mode) matters only
    // when a target host requires signatures.
    signer = null;
    unusable = err;
  }
  if (!signer && unusable === null) return null;
  const nodes = (await callHub(target, 'GET', '/api/v1/nodes')) as NodeSummary[];
  const names = await targetNames(target, on);
  if (!nodes.some((n) => names(n) && n.policy?.signedIntent)) return null;
  if (unusable !== null) throw unusable;
  return signer;
}

async function targetNames(target: HubTarget, on: Parameters<typeof chooseSigner>[2]): Promise<(n: NodeSummary) => boolean> {
  if ('stack' in on) {
    const stack = (await callHub(target, 'GET', `/api/v1/stacks/${encodeURIComponent(on.stack)}`).catch(() => null)) as { nodes?: Array<{ node: string }> } | null;
    const held = new Set((stack?.nodes ?? []).map((n) => n.node));
    return (n) => held.has(n.name);
  }
  const to = on.deployTo;
  if ('node' in to) return (n) => n.name === to.node;
  if ('nodes' in to) return (n) => to.nodes.includes(n.name);
  const selector = typeof to.selector === 'string' ? to.selector : `${to.selector.key}=${to.selector.value}`;
  const at = selector.indexOf('=');
  const [key, value] = [selector.slice(0, at), selector.slice(at + 1)];
  return (n) => n.labels?.[key] === value;
}

/** The project, gate and job secrets a deploy of this file would carry, parsed here as the hub parses it. */
export function localProject(input: ComposeInput): { project: StackProject; gate: HealthGate; secrets: JobSecretsShape } {
  const parsed = parseCompose(input);
  if (!parsed.ok) {
    const first = parsed.errors[0];
    throw new DockfleetError('validation_failed', first ? `compose file: ${first.path}${first.line === null ? '' : ` (line ${first.line})`}: ${first.message}` : 'compose file is invalid');
  }
  return { project: parsed.project, gate: healthGate.parse({}), secrets: { env: parsed.secretEnv, files: parsed.secretFiles } };
}
