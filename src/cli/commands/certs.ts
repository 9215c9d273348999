/** `dockfleet certs add|ls|rm`: the edge's TLS certificates, supplied ones (wildcards included)
 * beside those ACME obtained. The key file is read here and sent to the hub once; no answer
 * ever carries a key back. */
import { readFile } from 'node:fs/promises';
import { parseArgs } from 'node:util';
import { DockfleetError } from '../../protocol/errors.ts';
import type { CertificateView } from '../../protocol/ingress.ts';
import { UsageError, type Command } from '../command.ts';
import { TARGET_HELP, TARGET_OPTIONS, callHub, resolveTarget } from '../hub-client.ts';

const OPTIONS = { ...TARGET_OPTIONS, cert: { type: 'string' }, key: { type: 'string' }, json: { type: 'boolean' } } as const;

function table(rows: string[][]): void {
  const widths = rows[0]!.map((_, i) => Math.max(...rows.map((r) => r[i]!.length)));
  for (const r of rows)
    process.stdout.write(
      `${r
        .map((c, i) => c.padEnd(widths[i]!))
        .join('  ')
        .trimEnd()}\n`,
    );
}

async function readPem(path: string, what: string): Promise<string> {
  try {
    return await readFile(path, 'utf8');
  } catch {
    throw new DockfleetError('bad_request', `cannot read the ${what} file at ${path}`);
  }
}

function only(values: Record<string, unknown>, allowed: string[]): void {
  const extra = Object.keys(values).filter((k) => !(k in TARGET_OPTIONS) && !allowed.includes(k));
  if (extra.length > 0) throw new UsageError(`--${extra[0]} does not apply here`);
}

export const certsCommand: Command = {
  summary: "the edge's TLS certificates: add your own (wildcards too), list them with ACME's, remove one",
  usage: `dockfleet certs add --cert FILE --key FILE   # a certificate chain (leaf first) and its unencrypted key, PEM
dockfleet certs ls [--json]                  # [{id, source, names, notBefore, notAfter, fingerprint, issuer, acmeHost, createdAt}]
dockfleet certs rm ID

add prints the new certificate's id on the last line of stdout. It is served on the edge port
from the next TLS handshake for the names it carries: a supplied certificate naming a host
exactly comes first, then a supplied wildcard (*.example.com covers one label), then ACME's.
Adding and removing need an admin.

${TARGET_HELP}`,
  async run(argv) {
    const [sub, ...rest] = argv;
    const { values, positionals } = parseArgs({ args: rest, strict: true, allowPositionals: true, options: OPTIONS });
    switch (sub) {
      case 'add': {
        only(values, ['cert', 'key']);
        if (positionals.length > 0) throw new UsageError('certs add takes no arguments, only --cert and --key');
        if (values.cert === undefined || values.key === undefined) throw new UsageError('certs add needs --cert FILE and --key FILE');
        const body = { certPem: await readPem(values.cert, 'certificate'), keyPem: await readPem(values.key, 'key') };
        const added = (await callHub(resolveTarget(values), 'POST', '/api/v1/certificates', body)) as CertificateView;
        process.stdout.write(`names ${added.names.join(', ')}; valid until ${added.notAfter}; sha256 ${added.fingerprint}\n${added.id}\n`);
        return;
      }
      case 'ls': {
        only(values, ['json']);
        if (positionals.length > 0) throw new UsageError('certs ls takes no arguments');
        const certs = (await callHub(resolveTarget(values), 'GET', '/api/v1/certificates')) as CertificateView[];
        if (values.json) return void process.stdout.write(`${JSON.stringify(certs, null, 2)}\n`);
        const rows = [['ID', 'SOURCE', 'NAMES', 'NOT AFTER', 'ISSUER']];
        for (const c of certs) rows.push([c.id, c.source, c.names.join(','), c.notAfter, c.issuer]);
        return table(rows);
      }
      case 'rm': {
        only(values, []);
        if (positionals.length !== 1) throw new UsageError('certs rm takes one certificate id (see dockfleet certs ls)');
        const id = positionals[0]!;
        await callHub(resolveTarget(values), 'DELETE', `/api/v1/certificates/${encodeURIComponent(id)}`);
        process.stdout.write(`removed ${id}\n`);
        return;
      }
      default:
        throw new UsageError(sub === undefined ? 'expected add, ls or rm' : `unknown certs command "${sub}"`);
    }
  },
};
