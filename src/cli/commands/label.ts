/** `dockfleet label NODE key=value…`: sets node labels (key= removes one); stack selectors match them. */
import { parseArgs } from 'node:util';
import type { NodeView } from '../../protocol/api.ts';
import { UsageError, type Command } from '../command.ts';
import { TARGET_HELP, TARGET_OPTIONS, callHub, resolveTarget } from '../hub-client.ts';

export const labelCommand: Command = {
  summary: 'set or remove node labels (stack targets select nodes by label)',
  usage: `dockfleet label NODE key=value… [--json]

  key=value   sets a label; key= removes it. Prints the node's labels afterwards.
  --json      the labels as one JSON object

${TARGET_HELP}`,
  async run(args) {
    const { values, positionals } = parseArgs({ args, strict: true, allowPositionals: true, options: { ...TARGET_OPTIONS, json: { type: 'boolean' } } });
    const [node, ...pairs] = positionals;
    if (node === undefined || pairs.length === 0) throw new UsageError('expected NODE and at least one key=value');
    const labels: Record<string, string | null> = {};
    for (const pair of pairs) {
      const at = pair.indexOf('=');
      if (at <= 0) throw new UsageError(`"${pair}" is not key=value (key= removes a label)`);
      const value = pair.slice(at + 1);
      labels[pair.slice(0, at)] = value === '' ? null : value;
    }
    const view = (await callHub(resolveTarget(values), 'PUT', `/api/v1/nodes/${encodeURIComponent(node)}/labels`, { labels })) as NodeView;
    if (values.json) return void process.stdout.write(`${JSON.stringify(view.labels)}\n`);
    for (const [key, value] of Object.entries(view.labels)) process.stdout.write(`${key}=${value}\n`);
  },
};
