/**
 * What a route's `dockfleet.ingress.access` label may say, and whom each value admits:
 * `public` anyone; `users` anyone signed in at the hub; a role name (`viewer`, `operator`,
 * `admin`) users of that role or a higher one (admin > operator > viewer). Any other word is a
 * label mistake, listed with the container's route (route-labels.ts), never a route nobody can use.
 */
import { USER_ROLES } from '../../../protocol/api.ts';
import type { UserRole } from '../../../store/store.ts';

export const ACCESS_LEVELS = ['public', 'users', ...USER_ROLES] as const;
export type AccessLevel = (typeof ACCESS_LEVELS)[number];

const RANK: Record<UserRole, number> = { viewer: 1, operator: 2, admin: 3 };

export function isAccessLevel(value: string): value is AccessLevel {
  return (ACCESS_LEVELS as readonly string[]).includes(value);
}

/** Why a well-formed access word is still not one the edge knows; null when it is. */
export function accessProblem(access: string): string | null {
  return isAccessLevel(access) ? null : `"${access}" is not ${ACCESS_LEVELS.slice(0, -1).join(', ')} or ${ACCESS_LEVELS.at(-1)}`;
}

/** Whether a signed-in user of `role` may use a route marked `access` (never for an unknown word). */
export function roleAdmits(role: UserRole, access: string): boolean {
  if (access === 'public' || access === 'users') return true;
  return isAccessLevel(access) && access in RANK && RANK[role] >= RANK[access as UserRole];
}
