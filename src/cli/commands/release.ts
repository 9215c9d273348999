/**
 * `dockfleet release-key create` and `dockfleet release sign|add|ls` (issue 16): the release key
 * is made and kept by whoever builds agent releases (never on the hub); `pack` makes a release
 * from a checkout; `sign` writes
 * PACKAGE.tgz.sig beside a package; `add` hands package and signature to the hub, which checks
 * them against its --release-key before offering them to agents.
 */
import { readFile, writeFile } from 'node:fs/promises';
import { basename, join, resolve } from 'node:path';
import { parseArgs } from 'node:util';
import { generateReleaseKey, signRelease } from '../../lib/release-keys.ts';
import { releaseVersionSchema, type ReleaseView } from '../../protocol/releases.ts';
import { UsageError, type Command } from '../command.ts';
import { RUNNING_TREE, packRelease } from '../release/pack-release.ts';
import { TARGET_HELP, TARGET_OPTIONS, callHub, resolveTarget } from '../hub-client.ts';

export const releaseKeyCommand: Command = {
  summary: 'make the release key that signs agent releases (keep it off the hub)',
  usage: `dockfleet release-key create [--out FILE]

  Makes an Ed25519 release key: the private key goes to FILE (default ./release-key.pem, mode
  0600, refused if it exists); the public key is printed alone on the last line, for
  dockfleet hub --release-key. Agents enrolled on that hub accept only releases this key signed.`,
  async run(args) {
    const { values, positionals } = parseArgs({ args, strict: true, allowPositionals: true, options: { out: { type: 'string' } } });
    if (positionals[0] !== 'create' || positionals.length !== 1) throw new UsageError('usage: dockfleet release-key create [--out FILE]');
    const out = values.out ?? './release-key.pem';
    const key = generateReleaseKey();
    try {
      await writeFile(out, key.privateKeyPem, { mode: 0o600, flag: 'wx' });
    } catch (err) {
      throw new Error((err as NodeJS.ErrnoException).code === 'EEXIST' ? `${out} exists; not overwritten` : `cannot write ${out}: ${(err as Error).message}`);
    }
    process.stdout.write(`# private release key written to ${out} (0600); keep it where releases are built\n${key.publicKey}\n`);
  },
};

async function versionOf(pkgPath: string, given: string | undefined): Promise<string> {
  if (given !== undefined) return releaseVersionSchema.parse(given);
  // npm pack names its tarball NAME-VERSION.tgz.
  const m = /^dockfleet-(.+)\.tgz$/.exec(basename(pkgPath));
  if (!m || !releaseVersionSchema.safeParse(m[1]).success) throw new UsageError(`cannot tell the version from ${basename(pkgPath)}; pass --version`);
  return m[1]!;
}

export const releaseCommand: Command = {
  summary: "sign an agent release, add it to the hub, list the hub's releases",
  usage: `dockfleet release pack [--version V] [--with-dependencies] [--from DIR] [--out DIR]
dockfleet release sign PACKAGE.tgz --key FILE [--version V]   # writes PACKAGE.tgz.sig
dockfleet release add PACKAGE.tgz [--signature FILE]              # default PACKAGE.tgz.sig
dockfleet release ls [--json]

  A release is the agent's code as a gzipped tar (src, bin, package.json, package-lock.json).
  pack makes one from a checkout (--from, default the one this command runs from) as
  OUT/dockfleet-V.tgz (V default: the checkout's version). An agent runs a release with its own
  packages when every run-time package the release's lock pins is there at that version;
  otherwise the release must carry them (--with-dependencies: the checkout's node_modules, about
  35 MB). The version is read from dockfleet-V.tgz unless --version is given; the agent checks
  that the package's package.json says the same.
${TARGET_HELP}`,
  async run(args) {
    const { values, positionals } = parseArgs({
      args,
      strict: true,
      allowPositionals: true,
      options: {
        ...TARGET_OPTIONS,
        key: { type: 'string' },
        version: { type: 'string' },
        signature: { type: 'string' },
        json: { type: 'boolean' },
        from: { type: 'string' },
        out: { type: 'string' },
        'with-dependencies': { type: 'boolean' },
      },
    });
    const [sub, pkgPath, ...rest] = positionals;
    if (rest.length > 0) throw new UsageError('too many arguments');
    if (sub === 'pack') {
      if (pkgPath !== undefined) throw new UsageError('usage: dockfleet release pack [--version V] [--with-dependencies] [--from DIR] [--out DIR]');
      const from = resolve(values.from ?? RUNNING_TREE);
      const version = releaseVersionSchema.parse(values.version ?? (JSON.parse(await readFile(join(from, 'package.json'), 'utf8')) as { version?: unknown }).version);
      const out = join(resolve(values.out ?? '.'), `dockfleet-${version}.tgz`);
      const { files } = await packRelease({ from, version, withDependencies: values['with-dependencies'] === true, out });
      process.stdout.write(`packed ${version} (${files} files${values['with-dependencies'] ? ', with dependencies' : ''})\n${out}\n`);
      return;
    }
    if (sub === 'sign') {
      if (!pkgPath || !values.key) throw new UsageError('usage: dockfleet release sign PACKAGE.tgz --key FILE');
      const [pkg, keyPem] = await Promise.all([readFile(pkgPath), readFile(values.key, 'utf8')]);
      const signature = signRelease(pkg, await versionOf(pkgPath, values.version), keyPem);
      await writeFile(`${pkgPath}.sig`, `${JSON.stringify(signature, null, 2)}\n`);
      process.stdout.write(`signed ${signature.manifest.version} (sha256 ${signature.manifest.sha256}) with ${signature.key}\n${pkgPath}.sig\n`);
      return;
    }
    const target = resolveTarget(values);
    if (sub === 'add') {
      if (!pkgPath) throw new UsageError('usage: dockfleet release add PACKAGE.tgz [--signature FILE]');
      const [pkg, sig] = await Promise.all([readFile(pkgPath), readFile(values.signature ?? `${pkgPath}.sig`, 'utf8')]);
      let signature: unknown;
      try {
        signature = JSON.parse(sig);
      } catch {
        throw new Error('the signature file is not JSON (made by dockfleet release sign?)');
      }
      const added = (await callHub(target, 'POST', '/api/v1/releases', { package: pkg.toString('base64'), signature })) as ReleaseView;
      process.stdout.write(`release ${added.version} added (${added.size} bytes)\n${added.version}\n`);
      return;
    }
    if (sub === 'ls') {
      const list = (await callHub(target, 'GET', '/api/v1/releases')) as ReleaseView[];
      if (values.json) process.stdout.write(`${JSON.stringify(list, null, 2)}\n`);
      else for (const r of list) process.stdout.write(`${r.version}\t${r.size}\t${r.sha256.slice(0, 16)}\t${r.addedAt}\n`);
      return;
    }
    throw new UsageError('usage: dockfleet release pack|sign|add|ls');
  },
};
