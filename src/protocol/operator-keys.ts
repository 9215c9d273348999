/**
 * Operator keys over REST (issue 13): what `POST /api/v1/operator-keys` takes and what the list
 * answers. Only public halves, in policy-file form; shared by the hub, the CLI and the web UI.
 */
import { z } from 'zod';
import { OPERATOR_KEY } from './intent.ts';

export const OPERATOR_KEY_HINT = 'an operator key is "ed25519:" followed by 43 base64url characters, as `dockfleet operator-key show` prints it';

export const createOperatorKeyBody = z.strictObject({
  publicKey: z.string().max(200).trim().regex(OPERATOR_KEY, OPERATOR_KEY_HINT),
  name: z.string().trim().min(1).max(100).optional(),
});
export type CreateOperatorKeyBody = z.infer<typeof createOperatorKeyBody>;

/** One key as the hub shows it: `id` is the key's short fingerprint. */
export interface OperatorKeyView {
  id: string;
  publicKey: string;
  name: string;
  /** The user the key belongs to. */
  user: string;
  createdAt: string;
  /** When it was revoked at the hub; null while it is current. */
  revokedAt: string | null;
}
