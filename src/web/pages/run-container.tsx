/** Run a container from a form: node, image (pulled with live per-layer progress, with stored
 * registry credentials if chosen), and its settings. Created through the hub's Docker endpoint,
 * so the host's policy judges it; a refusal shows the daemon's own words. On a host that requires
 * signed intent the calls are signed with this browser's key (lib/api.ts), and the form's submit
 * is disabled with the reason when this browser cannot sign for the chosen node. */
import type { JSX } from 'preact';
import { useEffect, useState } from 'preact/hooks';
import { toast } from '../components/toasts.tsx';
import { InlineError, PageHeader, SubmitButton, buttonClass } from '../components/ui.tsx';
import { canChange } from '../lib/access.ts';
import { dockerPath, errorMessage, get, post } from '../lib/api.ts';
import { EMPTY_SPEC, specFromInspect, specToCreateBody, type InspectForSpec, type RunSpec } from '../lib/container-spec.ts';
import { pullImage, type PullState } from '../lib/image-pull.ts';
import { fleet } from '../lib/live.ts';
import { navigate, useLocation } from '../lib/router.ts';
import { useSigningBlock } from '../lib/signing.ts';
import { useStore } from '../lib/store.ts';
import type { Me } from '../lib/types.ts';
import { SigningNeeded } from './containers.tsx';

interface RegistryView {
  id: string;
  server: string;
  username: string;
}

type Field = keyof RunSpec;

/** The settings a run and an edit share; `only` limits it to the fields an edit may change. */
export function ContainerFields({ spec, set, errors, only }: { spec: RunSpec; set: (f: Field, v: string) => void; errors: Partial<Record<Field, string>>; only?: readonly Field[] }): JSX.Element {
  const show = (f: Field): boolean => !only || only.includes(f);
  const text = (f: Field, label: string, hint: string, placeholder = ''): JSX.Element | null =>
    !show(f) ? null : (
      <div class="field">
        <label for={`run-${f}`}>{label}</label>
        <input
          id={`run-${f}`}
          class="mono"
          value={spec[f]}
          placeholder={placeholder}
          autocomplete="off"
          spellcheck={false}
          aria-invalid={errors[f] ? 'true' : undefined}
          aria-describedby={`run-${f}-hint${errors[f] ? ` run-${f}-error` : ''}`}
          onInput={(e) => set(f, e.currentTarget.value)}
        />
        <div class="hint" id={`run-${f}-hint`}>
          {hint}
        </div>
        {errors[f] && (
          <div class="field-error" id={`run-${f}-error`} role="alert">
            {errors[f]}
          </div>
        )}
      </div>
    );
  const area = (f: Field, label: string, hint: string, placeholder: string): JSX.Element | null =>
    !show(f) ? null : (
      <div class="field">
        <label for={`run-${f}`}>{label}</label>
        <textarea
          id={`run-${f}`}
          class="mono"
          rows={3}
          value={spec[f]}
          placeholder={placeholder}
          spellcheck={false}
          aria-invalid={errors[f] ? 'true' : undefined}
          aria-describedby={`run-${f}-hint${errors[f] ? ` run-${f}-error` : ''}`}
          onInput={(e) => set(f, e.currentTarget.value)}
        />
        <div class="hint" id={`run-${f}-hint`}>
          {hint}
        </div>
        {errors[f] && (
          <div class="field-error" id={`run-${f}-error`} role="alert">
            {errors[f]}
          </div>
        )}
      </div>
    );
  return (
    <>
      {text('name', 'Name', 'Optional; the engine picks one when empty.', 'web-1')}
      {text('command', 'Command', "Optional; the image's own command when empty. Quotes group words.", 'sh -c "echo hi"')}
      {area('env', 'Environment', 'KEY=value per line. Values may be secrets: anyone who can inspect the container sees them.', 'TZ=Europe/Budapest')}
      {area('ports', 'Ports', 'HOST:CONTAINER per line, e.g. 8080:80, 127.0.0.1:5432:5432, 53:53/udp.', '8080:80')}
      {area('volumes', 'Volumes and binds', 'VOLUME:/path or /host/path:/path per line; add :ro for read-only. The host policy decides which host paths are allowed.', 'data:/var/lib/app')}
      {text('network', 'Network', 'Optional: a network name, host or none; the default bridge when empty.', 'bridge')}
      {show('restart') && (
        <div class="field">
          <label for="run-restart">Restart policy</label>
          <select id="run-restart" value={spec.restart} onChange={(e) => set('restart', e.currentTarget.value)}>
            <option value="no">Never</option>
            <option value="on-failure">On failure</option>
            <option value="unless-stopped">Unless stopped</option>
            <option value="always">Always</option>
          </select>
        </div>
      )}
      {area('labels', 'Labels', 'key=value per line.', 'com.example.team=web')}
      {(show('memoryMb') || show('cpus') || show('pids')) && (
        <fieldset class="field">
          <legend>Resources</legend>
          <div class="field-row">
            {text('memoryMb', 'Memory (MB)', 'Empty: no limit.', '512')}
            {text('cpus', 'CPUs', 'e.g. 0.5; empty: no limit.', '1')}
            {text('pids', 'Processes', 'Most processes at once; empty: no limit.', '256')}
          </div>
        </fieldset>
      )}
    </>
  );
}

export function PullProgress({ state }: { state: PullState | null }): JSX.Element | null {
  if (!state) return null;
  return (
    <div class="pull-progress" role="status" aria-live="polite">
      <p>{state.message}</p>
      <ul class="plain-list small mono">
        {state.layers.map((l) => (
          <li key={l.id}>
            {l.id}: {l.status}
            {l.total > 0 && (
              <>
                {' '}
                <progress max={l.total} value={l.current} aria-label={`Layer ${l.id}`} />
              </>
            )}
          </li>
        ))}
      </ul>
    </div>
  );
}

export function RunContainerPage({ me }: { me: Me }): JSX.Element {
  const f = useStore(fleet);
  const loc = useLocation();
  const from = loc.query.get('from');
  // Only the nodes the user may change (its global role, or an operator grant there).
  const online = (f.nodes ?? []).filter((n) => n.status === 'online' && canChange(me, n));
  const [node, setNode] = useState(loc.query.get('node') ?? (from ? from.split('/')[0]! : ''));
  const [spec, setSpec] = useState<RunSpec>(EMPTY_SPEC);
  const [errors, setErrors] = useState<Partial<Record<Field, string>>>({});
  const [pullFirst, setPullFirst] = useState(false);
  const [registryId, setRegistryId] = useState('');
  const [registries, setRegistries] = useState<RegistryView[]>([]);
  const [pull, setPull] = useState<PullState | null>(null);
  const [busy, setBusy] = useState(false);
  const [refused, setRefused] = useState<string | null>(null);
  const can = node ? canChange(me, node) : online.length > 0;
  const unsignable = useSigningBlock(node);

  useEffect(() => {
    if (!node && online[0]) setNode(online[0].name);
  }, [online.length]);
  useEffect(() => {
    void get<RegistryView[]>('/api/v1/registries').then(setRegistries, () => setRegistries([]));
  }, []);
  // Duplicate: the form starts as a copy of that container.
  useEffect(() => {
    if (!from) return;
    const [n, id] = from.split('/') as [string, string];
    void get<InspectForSpec>(dockerPath(n, `/containers/${encodeURIComponent(id)}/json`)).then(
      (info) => {
        const s = specFromInspect(info);
        setSpec({ ...s, name: `${s.name}-copy`, volumes: s.volumes });
      },
      (err) => setRefused(`Could not read the container to copy: ${errorMessage(err)}`),
    );
  }, [from]);

  const set = (k: Field, v: string): void => setSpec((s) => ({ ...s, [k]: v }));

  const submit = async (e: Event): Promise<void> => {
    e.preventDefault();
    setRefused(null);
    const made = specToCreateBody(spec);
    setErrors(made.errors);
    if (!node) return setRefused('Choose a node that is online.');
    if (!made.body) return;
    setBusy(true);
    try {
      if (pullFirst) {
        setPull({ layers: [], message: `Pulling ${spec.image.trim()} on ${node}…` });
        await pullImage(node, spec.image.trim(), { ...(registryId ? { registryId } : {}), onProgress: setPull });
      }
      const name = spec.name.trim();
      const created = await post<{ Id: string }>(dockerPath(node, `/containers/create${name ? `?name=${encodeURIComponent(name)}` : ''}`), made.body);
      await post(dockerPath(node, `/containers/${created.Id}/start`));
      toast.success(`Started ${name || created.Id.slice(0, 12)} on ${node}.`);
      navigate(`/containers/${encodeURIComponent(node)}/${created.Id.slice(0, 12)}`);
    } catch (err) {
      setRefused(errorMessage(err));
    } finally {
      setBusy(false);
    }
  };

  return (
    <>
      <PageHeader title={from ? 'Duplicate a container' : 'Run a container'} sub="Created through the node's Docker endpoint: its host policy decides what is allowed.">
        <a class={buttonClass('ghost')} href="/containers">
          Cancel
        </a>
      </PageHeader>
      {!can && (
        <p class="notice" role="note">
          Your role on this node does not allow running containers (viewers may only read).
        </p>
      )}
      <form class="deploy-form" onSubmit={(e) => void submit(e)} noValidate>
        <div class="field">
          <label for="run-node">Node</label>
          <select id="run-node" value={node} onChange={(e) => setNode(e.currentTarget.value)}>
            {online.length === 0 && <option value="">No node is online</option>}
            {online.map((n) => (
              <option key={n.name} value={n.name}>
                {n.name}
              </option>
            ))}
          </select>
        </div>
        <div class="field">
          <label for="run-image">Image</label>
          <input
            id="run-image"
            class="mono"
            value={spec.image}
            placeholder="nginx:1.27"
            autocomplete="off"
            spellcheck={false}
            required
            aria-invalid={errors.image ? 'true' : undefined}
            aria-describedby={`run-image-hint${errors.image ? ' run-image-error' : ''}`}
            onInput={(e) => set('image', e.currentTarget.value)}
          />
          <div class="hint" id="run-image-hint">
            An image on the node, or one to pull first.
          </div>
          {errors.image && (
            <div class="field-error" id="run-image-error" role="alert">
              {errors.image}
            </div>
          )}
        </div>
        <div class="field">
          <label class="check">
            <input type="checkbox" checked={pullFirst} onChange={(e) => setPullFirst(e.currentTarget.checked)} /> Pull the image first
          </label>
        </div>
        {pullFirst && (
          <div class="field">
            <label for="run-registry">Registry credentials</label>
            <select id="run-registry" value={registryId} onChange={(e) => setRegistryId(e.currentTarget.value)} aria-describedby="run-registry-hint">
              <option value="">None (public image)</option>
              {registries.map((r) => (
                <option key={r.id} value={r.id}>
                  {r.username} @ {r.server}
                </option>
              ))}
            </select>
            <div class="hint" id="run-registry-hint">
              Stored encrypted at the hub and sent only to that registry; admins add them with POST /api/v1/registries.
            </div>
          </div>
        )}
        <ContainerFields spec={spec} set={set} errors={errors} />
        <PullProgress state={pull} />
        {refused && <InlineError>{refused}</InlineError>}
        {can && unsignable && <SigningNeeded reason={unsignable} />}
        <div class="form-actions">
          <SubmitButton busy={busy} disabled={!can || unsignable !== null}>
            Run container
          </SubmitButton>
        </div>
      </form>
    </>
  );
}
