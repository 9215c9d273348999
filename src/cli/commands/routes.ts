/** `dockfleet routes`: every ingress route from container labels on every node, read from the
 * hub's REST API: which are served, which are down, and the label mistakes and conflicts. */
import { parseArgs } from 'node:util';
import { UsageError, type Command } from '../command.ts';
import { TARGET_HELP, TARGET_OPTIONS, callHub, resolveTarget } from '../hub-client.ts';
import type { RouteView } from '../../protocol/ingress.ts';

function table(rows: string[][]): string {
  const widths = rows[0]!.map((_, i) => Math.max(...rows.map((r) => r[i]!.length)));
  return rows
    .map(
      (r) =>
        `${r
          .map((c, i) => c.padEnd(widths[i]!))
          .join('  ')
          .trimEnd()}\n`,
    )
    .join('');
}

function state(r: RouteView): string {
  if (r.error !== null) return 'error';
  if (!r.nodeOnline) return 'node offline';
  return r.running ? 'serving' : 'stopped';
}

export const routesCommand: Command = {
  summary: 'list ingress routes from container labels: host, node, container, state, errors',
  usage: `dockfleet routes [--json]

  --json   an array of {host, path, node, container, port, access, tls: {state, notAfter}, error}

${TARGET_HELP}`,
  async run(args) {
    const { values, positionals } = parseArgs({ args, strict: true, allowPositionals: true, options: { ...TARGET_OPTIONS, json: { type: 'boolean' } } });
    if (positionals.length > 0) throw new UsageError('routes takes no arguments');
    const routes = (await callHub(resolveTarget(values), 'GET', '/api/v1/routes')) as RouteView[];
    if (values.json) {
      const out = routes.map((r) => ({ host: r.host, path: r.path, node: r.node, container: r.container, port: r.port, access: r.access, tls: r.tls, error: r.error }));
      process.stdout.write(`${JSON.stringify(out, null, 2)}\n`);
      return;
    }
    const rows = [['HOST', 'PATH', 'NODE', 'CONTAINER', 'PORT', 'PROTOCOL', 'ACCESS', 'TLS', 'STATE', 'ERROR']];
    for (const r of routes) {
      rows.push([r.host || '-', r.path, r.node, r.container, r.port === null ? '-' : String(r.port), r.protocol, r.access, r.tls.state, state(r), r.error ?? '']);
    }
    process.stdout.write(table(rows));
  },
};
