/** People and access (admins): users with their role or scope, disable and enable, a temporary
 * password shown once, node grants by name or label; pending enrollment codes and join tokens,
 * listed without their secrets, revocable. Every change goes through the audited REST API. */
import type { JSX } from 'preact';
import { useState } from 'preact/hooks';
import { Dialog } from '../components/dialog.tsx';
import { useFormSubmit } from '../components/form-submit.ts';
import { toast } from '../components/toasts.tsx';
import { ActionButton, AsyncView, CopyField, Empty, InlineError, PageHeader, SubmitButton, buttonClass, useAsync } from '../components/ui.tsx';
import { del, get, json, post } from '../lib/api.ts';
import { ago, dateTime } from '../lib/format.ts';

type Role = 'admin' | 'operator' | 'viewer';
interface Grant {
  id: string;
  node: string | null;
  selector: string | null;
  role: 'operator' | 'viewer';
  createdAt: string;
}
interface UserRow {
  name: string;
  role: Role;
  scoped: boolean;
  hasPassword: boolean;
  builtIn: boolean;
  createdAt: string;
  disabledAt: string | null;
  grants: Grant[];
}
interface PendingCode {
  id: string;
  kind: 'code' | 'join-token';
  node: string | null;
  createdAt: string;
  expiresAt: string;
}

const userPath = (name: string, rest = ''): string => `/api/v1/users/${encodeURIComponent(name)}${rest}`;
const patch = (name: string, body: unknown): Promise<unknown> => json('PATCH', userPath(name), { body });

export function PeoplePage(): JSX.Element {
  const users = useAsync((signal) => get<UserRow[]>('/api/v1/users', { signal }), []);
  const [creating, setCreating] = useState(false);
  const [granting, setGranting] = useState<string | null>(null);
  const [access, setAccess] = useState<UserRow | null>(null);
  const [password, setPassword] = useState<{ name: string; temporaryPassword: string } | null>(null);

  const toggle = async (u: UserRow): Promise<void> => {
    await patch(u.name, { disabled: u.disabledAt === null });
    toast.success(`${u.name} ${u.disabledAt === null ? 'disabled' : 'enabled'}`);
    users.reload();
  };
  const reset = async (u: UserRow): Promise<void> => setPassword(await post(userPath(u.name, '/password')));

  return (
    <>
      <PageHeader title="People" sub="Who may sign in, and which nodes each person sees">
        <button type="button" class={buttonClass('primary')} onClick={() => setCreating(true)}>
          New user
        </button>
      </PageHeader>
      <section class="card" aria-labelledby="people-users">
        <h2 id="people-users" class="card-title">
          Users
        </h2>
        <p class="muted small">
          A global role applies on every node; grants add a role on some nodes. A user <strong>limited to granted nodes</strong> has no global role and sees only the nodes its grants cover.
        </p>
        <AsyncView state={users} loadingLabel="Loading users…">
          {(list) => (
            <table class="table responsive">
              <caption class="sr-only">Users</caption>
              <thead>
                <tr>
                  <th scope="col">Name</th>
                  <th scope="col">Access</th>
                  <th scope="col">Grants</th>
                  <th scope="col">Status</th>
                  <th scope="col">
                    <span class="sr-only">Actions</span>
                  </th>
                </tr>
              </thead>
              <tbody>
                {list.map((u) => (
                  <tr key={u.name}>
                    <td data-label="Name" class="strong">
                      {u.name}
                    </td>
                    <td data-label="Access">{u.scoped ? 'granted nodes only' : u.role}</td>
                    <td data-label="Grants">{u.grants.length === 0 ? <span class="muted">none</span> : u.grants.map((g) => `${g.node ?? g.selector} (${g.role})`).join(', ')}</td>
                    <td data-label="Status">{u.disabledAt === null ? 'active' : <span title={dateTime(u.disabledAt)}>disabled {ago(u.disabledAt)}</span>}</td>
                    <td class="cell-actions">
                      {!u.builtIn && (
                        <div class="row-actions">
                          <button type="button" class={buttonClass('default', true)} aria-label={`Change access of ${u.name}`} onClick={() => setAccess(u)}>
                            Access
                          </button>
                          <button type="button" class={buttonClass('default', true)} aria-label={`Grants of ${u.name}`} onClick={() => setGranting(u.name)}>
                            Grants
                          </button>
                          <ActionButton small what={`Reset password of ${u.name}`} aria-label={`Reset password of ${u.name}`} onClick={() => reset(u)}>
                            Reset password
                          </ActionButton>
                          <ActionButton
                            small
                            variant={u.disabledAt === null ? 'danger' : 'default'}
                            what={`${u.disabledAt === null ? 'Disable' : 'Enable'} ${u.name}`}
                            aria-label={`${u.disabledAt === null ? 'Disable' : 'Enable'} ${u.name}`}
                            onClick={() => toggle(u)}
                          >
                            {u.disabledAt === null ? 'Disable' : 'Enable'}
                          </ActionButton>
                        </div>
                      )}
                    </td>
                  </tr>
                ))}
              </tbody>
            </table>
          )}
        </AsyncView>
      </section>
      <PendingCodes />
      {creating && <NewUserDialog onClose={() => setCreating(false)} onDone={users.reload} />}
      {access && <AccessDialog user={access} onClose={() => setAccess(null)} onDone={users.reload} />}
      {granting && (
        <GrantsDialog
          name={granting}
          onClose={() => {
            setGranting(null);
            users.reload();
          }}
        />
      )}
      {password && (
        <Dialog
          title={`New password for ${password.name}`}
          onClose={() => setPassword(null)}
          footer={
            <button type="button" class={buttonClass('primary')} onClick={() => setPassword(null)}>
              Done
            </button>
          }
        >
          <p>
            <strong>Shown only once.</strong> Give it to {password.name}; their sessions were signed out. They can change it under Account.
          </p>
          <CopyField label="Temporary password" value={password.temporaryPassword} />
        </Dialog>
      )}
    </>
  );
}

function NewUserDialog({ onClose, onDone }: { onClose: () => void; onDone: () => void }): JSX.Element {
  const [name, setName] = useState('');
  const [role, setRole] = useState<Role | 'granted'>('viewer');
  const [pw, setPw] = useState('');
  const { busy, error, run } = useFormSubmit();
  const submit = async (e: Event): Promise<void> => {
    e.preventDefault();
    await run(async () => {
      await post('/api/v1/users', { name: name.trim(), role: role === 'granted' ? 'viewer' : role, ...(pw ? { password: pw } : {}) });
      if (role === 'granted') await patch(name.trim(), { scoped: true });
      toast.success(`User ${name.trim()} created`);
      onDone();
      onClose();
    });
  };
  return (
    <Dialog title="New user" onClose={onClose} busy={busy}>
      <form onSubmit={(e) => void submit(e)}>
        <div class="field">
          <label for="nu-name">Username</label>
          <input id="nu-name" required maxLength={63} autocomplete="off" value={name} onInput={(e) => setName(e.currentTarget.value)} />
        </div>
        <RoleSelect id="nu-role" value={role} onChange={setRole} />
        <div class="field">
          <label for="nu-pw">Password (optional: lets them sign in to the web UI)</label>
          <input id="nu-pw" type="password" autocomplete="new-password" minLength={8} value={pw} onInput={(e) => setPw(e.currentTarget.value)} />
        </div>
        <InlineError>{error}</InlineError>
        <div class="form-actions">
          <button type="button" class={buttonClass('default')} onClick={onClose} disabled={busy}>
            Cancel
          </button>
          <SubmitButton busy={busy}>Create user</SubmitButton>
        </div>
      </form>
    </Dialog>
  );
}

function RoleSelect({ id, value, onChange }: { id: string; value: Role | 'granted'; onChange: (v: Role | 'granted') => void }): JSX.Element {
  return (
    <div class="field">
      <label for={id}>Access</label>
      <select id={id} value={value} onChange={(e) => onChange(e.currentTarget.value as Role | 'granted')}>
        <option value="viewer">viewer — reads every node</option>
        <option value="operator">operator — changes containers on every node</option>
        <option value="admin">admin — everything</option>
        <option value="granted">granted nodes only (a customer)</option>
      </select>
    </div>
  );
}

function AccessDialog({ user, onClose, onDone }: { user: UserRow; onClose: () => void; onDone: () => void }): JSX.Element {
  const [role, setRole] = useState<Role | 'granted'>(user.scoped ? 'granted' : user.role);
  const { busy, error, run } = useFormSubmit();
  const submit = async (e: Event): Promise<void> => {
    e.preventDefault();
    await run(async () => {
      await patch(user.name, role === 'granted' ? { scoped: true } : { scoped: false, role });
      toast.success(`Access of ${user.name} changed`);
      onDone();
      onClose();
    });
  };
  return (
    <Dialog title={`Access of ${user.name}`} onClose={onClose} busy={busy}>
      <form onSubmit={(e) => void submit(e)}>
        <RoleSelect id="ua-role" value={role} onChange={setRole} />
        <InlineError>{error}</InlineError>
        <div class="form-actions">
          <button type="button" class={buttonClass('default')} onClick={onClose} disabled={busy}>
            Cancel
          </button>
          <SubmitButton busy={busy}>Save</SubmitButton>
        </div>
      </form>
    </Dialog>
  );
}

function GrantsDialog({ name, onClose }: { name: string; onClose: () => void }): JSX.Element {
  const grants = useAsync((signal) => get<Grant[]>(userPath(name, '/grants'), { signal }), [name]);
  const [target, setTarget] = useState('');
  const [role, setRole] = useState<'operator' | 'viewer'>('viewer');
  const { busy, error, run } = useFormSubmit();
  const add = async (e: Event): Promise<void> => {
    e.preventDefault();
    await run(async () => {
      const t = target.trim();
      await post(userPath(name, '/grants'), { ...(t.includes('=') ? { selector: t } : { node: t }), role });
      setTarget('');
      grants.reload();
    });
  };
  return (
    <Dialog
      title={`Grants of ${name}`}
      onClose={onClose}
      wide
      footer={
        <button type="button" class={buttonClass('primary')} onClick={onClose}>
          Done
        </button>
      }
    >
      <AsyncView state={grants} loadingLabel="Loading grants…">
        {(list) =>
          list.length === 0 ? (
            <Empty title="No grants" />
          ) : (
            <ul class="plain-list">
              {list.map((g) => (
                <li key={g.id}>
                  {g.node ? (
                    <>
                      node <strong>{g.node}</strong>
                    </>
                  ) : (
                    <>
                      nodes labelled <code>{g.selector}</code>
                    </>
                  )}{' '}
                  — {g.role}{' '}
                  <ActionButton
                    small
                    variant="danger"
                    what={`Remove grant on ${g.node ?? g.selector}`}
                    aria-label={`Remove grant on ${g.node ?? g.selector}`}
                    onClick={async () => {
                      await del(userPath(name, `/grants/${g.id}`));
                      grants.reload();
                    }}
                  >
                    Remove
                  </ActionButton>
                </li>
              ))}
            </ul>
          )
        }
      </AsyncView>
      <form onSubmit={(e) => void add(e)}>
        <div class="field">
          <label for="gr-target">Node name, or label key=value</label>
          <input id="gr-target" required maxLength={200} autocomplete="off" placeholder="shop-01 or customer=acme" value={target} onInput={(e) => setTarget(e.currentTarget.value)} />
        </div>
        <div class="field">
          <label for="gr-role">Role there</label>
          <select id="gr-role" value={role} onChange={(e) => setRole(e.currentTarget.value as 'operator' | 'viewer')}>
            <option value="viewer">viewer</option>
            <option value="operator">operator</option>
          </select>
        </div>
        <InlineError>{error}</InlineError>
        <SubmitButton busy={busy}>Add grant</SubmitButton>
      </form>
    </Dialog>
  );
}

function PendingCodes(): JSX.Element {
  const codes = useAsync((signal) => get<PendingCode[]>('/api/v1/enrollments', { signal }), []);
  return (
    <section class="card" aria-labelledby="people-codes">
      <h2 id="people-codes" class="card-title">
        Enrollment codes and join tokens
      </h2>
      <p class="muted small">Unused and unexpired; their secrets are never shown again. Revoke one you handed out by mistake.</p>
      <AsyncView state={codes} loadingLabel="Loading codes…">
        {(list) =>
          list.length === 0 ? (
            <Empty title="No pending codes" />
          ) : (
            <table class="table responsive">
              <caption class="sr-only">Pending enrollment codes and join tokens</caption>
              <thead>
                <tr>
                  <th scope="col">Kind</th>
                  <th scope="col">For node</th>
                  <th scope="col">Expires</th>
                  <th scope="col">
                    <span class="sr-only">Actions</span>
                  </th>
                </tr>
              </thead>
              <tbody>
                {list.map((k) => (
                  <tr key={k.id}>
                    <td data-label="Kind">{k.kind === 'code' ? 'enrollment code' : 'join token'}</td>
                    <td data-label="For node">{k.node ?? <span class="muted">any</span>}</td>
                    <td data-label="Expires" title={dateTime(k.expiresAt)}>
                      {dateTime(k.expiresAt)}
                    </td>
                    <td class="cell-actions">
                      <div class="row-actions">
                        <ActionButton
                          small
                          variant="danger"
                          what={`Revoke ${k.kind === 'code' ? `code for ${k.node}` : `join token ${k.id}`}`}
                          aria-label={`Revoke ${k.kind === 'code' ? `code for ${k.node}` : `join token ${k.id}`}`}
                          onClick={async () => {
                            await del(`/api/v1/enrollments/${k.id}`);
                            toast.success('Revoked');
                            codes.reload();
                          }}
                        >
                          Revoke
                        </ActionButton>
                      </div>
                    </td>
                  </tr>
                ))}
              </tbody>
            </table>
          )
        }
      </AsyncView>
    </section>
  );
}
