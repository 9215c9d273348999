/** Where registry credentials live: one row per registry host, the secret sealed (SecretBox). */

export interface RegistryCredentialRecord {
  id: string;
  /** Registry host as images name it: `registry.example.com`, `127.0.0.1:5000`, `docker.io`. */
  server: string;
  username: string;
  /** `SecretBox.seal(password, id)`: never the plaintext. */
  sealedSecret: string;
  createdBy: string;
  createdAt: number;
}

export interface RegistryStore {
  listRegistries(): Promise<RegistryCredentialRecord[]>;
  getRegistry(id: string): Promise<RegistryCredentialRecord | null>;
  /** False when a credential for that server already exists. */
  insertRegistry(r: RegistryCredentialRecord): Promise<boolean>;
  deleteRegistry(id: string): Promise<boolean>;
}
