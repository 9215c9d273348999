/**
 * Registry credentials at the hub: kept sealed (SecretBox, bound to the row's id), listed
 * without their secret, and turned into Docker's `X-Registry-Auth` header only on the way to a
 * node for a pull the UI asked for (`X-Dockfleet-Registry: ID` on `POST /images/create`). The
 * secret never leaves through the API and is never logged.
 */
import { randomUUID } from 'node:crypto';
import type { IncomingHttpHeaders } from 'node:http';
import { DockfleetError } from '../../protocol/errors.ts';
import type { SecretBox } from '../secret-box.ts';
import type { RegistryCredentialRecord, RegistryStore } from './registry-store.ts';

/** The header the UI names a stored credential with (dropped before the agent, as every x-dockfleet-* is). */
export const REGISTRY_ID_HEADER = 'x-dockfleet-registry';

/** What the API shows of a credential: everything but the secret. */
export interface RegistryView {
  id: string;
  server: string;
  username: string;
  createdBy: string;
  createdAt: string;
}

const view = (r: RegistryCredentialRecord): RegistryView => ({
  id: r.id,
  server: r.server,
  username: r.username,
  createdBy: r.createdBy,
  createdAt: new Date(r.createdAt).toISOString(),
});

/** The registry host an image reference pulls from (Docker's rule: a first part with a dot, a
 * colon or `localhost` is a host; anything else is Docker Hub). */
export function registryOfImage(image: string): string {
  const slash = image.indexOf('/');
  if (slash < 0) return 'docker.io';
  const first = image.slice(0, slash);
  return first.includes('.') || first.includes(':') || first === 'localhost' ? first : 'docker.io';
}

/** Docker's encoding: URL-safe base64 *with* padding (the engine's decoder needs the `=`). */
export function dockerAuthHeader(auth: { username: string; password: string; serveraddress: string }): string {
  return Buffer.from(JSON.stringify(auth), 'utf8').toString('base64').replace(/\+/g, '-').replace(/\//g, '_');
}

export class RegistryAuth {
  readonly #store: RegistryStore;
  readonly #secrets: SecretBox;

  constructor(store: RegistryStore, secrets: SecretBox) {
    this.#store = store;
    this.#secrets = secrets;
  }

  async list(): Promise<RegistryView[]> {
    return (await this.#store.listRegistries()).map(view);
  }

  async add(input: { server: string; username: string; password: string }, createdBy: string): Promise<RegistryView> {
    const id = randomUUID();
    const record: RegistryCredentialRecord = {
      id,
      server: input.server,
      username: input.username,
      sealedSecret: this.#secrets.seal(input.password, `registry:${id}`),
      createdBy,
      createdAt: Date.now(),
    };
    if (!(await this.#store.insertRegistry(record))) throw new DockfleetError('name_taken', `credentials for ${input.server} exist already; remove them first`);
    return view(record);
  }

  async remove(id: string): Promise<void> {
    if (!(await this.#store.deleteRegistry(id))) throw new DockfleetError('not_found', `no registry credentials ${id}`);
  }

  /** Docker's X-Registry-Auth value (padded base64url JSON) for the credential `id`, checked against the
   * image's registry so a credential is never sent to another host. */
  async headerFor(id: string, image: string): Promise<string> {
    const r = await this.#store.getRegistry(id);
    if (!r) throw new DockfleetError('not_found', `no registry credentials ${id}`);
    const host = registryOfImage(image);
    if (host !== r.server) throw new DockfleetError('validation_failed', `these credentials are for ${r.server}, but ${image} comes from ${host}`);
    const password = this.#secrets.open(r.sealedSecret, `registry:${id}`).toString('utf8');
    return dockerAuthHeader({ username: r.username, password, serveraddress: r.server });
  }

  /**
   * For a pull through the Docker endpoint: when the request names a stored credential, sets
   * X-Registry-Auth on it (in place) before it is forwarded. Any other call naming one is refused.
   */
  async applyToRequest(method: string, enginePath: string, headers: IncomingHttpHeaders): Promise<void> {
    const id = headers[REGISTRY_ID_HEADER];
    if (id === undefined) return;
    const [path, query = ''] = enginePath.split('?');
    if (method !== 'POST' || !/^(\/v[\d.]+)?\/images\/create$/.test(path ?? '')) {
      throw new DockfleetError('bad_request', `${REGISTRY_ID_HEADER} applies only to POST /images/create`);
    }
    const q = new URLSearchParams(query);
    const image = q.get('fromImage') ?? '';
    if (!image) throw new DockfleetError('bad_request', 'a pull with stored credentials needs fromImage');
    headers['x-registry-auth'] = await this.headerFor(String(id), image);
  }
}
