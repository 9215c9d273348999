/**
 * Deploy a stack: the Compose editor (checked as you type), where it goes, its variables
 * (secret values are write-only: sent once, never shown back), waves and gate; then the
 * rollout's jobs live until they end.
 */
import type { JSX } from 'preact';
import { useEffect, useRef, useState } from 'preact/hooks';
import { ComposeEditor } from '../components/compose-editor.tsx';
import { JobProgress } from '../components/job-progress.tsx';
import { StateBadge } from '../components/state-badge.tsx';
import { ErrorState, InlineError, Loading, PageHeader, SubmitButton, buttonClass } from '../components/ui.tsx';
import { errorMessage, get } from '../lib/api.ts';
import { fleet } from '../lib/live.ts';
import { useLocation } from '../lib/router.ts';
import { useSigningBlocks } from '../lib/signing.ts';
import { ComposeRefusedError, deployStack, parseEnvLines, validateCompose, type DeployInput } from '../lib/stack-api.ts';
import { useStore } from '../lib/store.ts';
import type { ComposeIssue, Me, RevisionDetail, RevisionSummary, RolloutStarted, RolloutView } from '../lib/types.ts';
import { SigningNeeded } from './containers.tsx';
import { VIEWER_REASON, canChangeStacks } from './stacks.tsx';

const STACK_NAME = /^[a-z0-9][a-z0-9_-]{0,62}$/;
const CHECK_DEBOUNCE_MS = 300;
const EXAMPLE = `services:
  web:
    image: nginx:alpine
    ports:
      - "127.0.0.1:8080:80"
    healthcheck:
      test: ["CMD", "wget", "-q", "-O-", "http://127.0.0.1/"]
      interval: 5s
`;

type TargetKind = 'node' | 'nodes' | 'selector';
interface SecretRow {
  name: string;
  value: string;
}

/** Problems the hub's own check finds as you type (debounced; a newer text cancels the older
 * request). Secret variables are sent by name with a stand-in value: their values never leave
 * the form before deploy. */
function useComposeCheck(stack: string, text: string, envText: string, secretNames: string[]): { issues: ComposeIssue[]; checking: boolean } {
  const [issues, setIssues] = useState<ComposeIssue[]>([]);
  const [checking, setChecking] = useState(false);
  const secretKey = secretNames.join('\n');
  useEffect(() => {
    if (!text.trim()) {
      setIssues([{ path: '', line: null, message: 'the Compose file is empty' }]);
      return undefined;
    }
    const abort = new AbortController();
    setChecking(true);
    const t = setTimeout(() => {
      const secretEnv = Object.fromEntries(secretNames.filter((n) => n).map((n) => [n, 'secret']));
      validateCompose(STACK_NAME.test(stack) ? stack : 'preview', { compose: text, env: parseEnvLines(envText).env, secretEnv }, abort.signal).then(
        (found) => {
          setIssues(found);
          setChecking(false);
        },
        (err: Error) => {
          if (err.name !== 'AbortError') {
            setIssues([]);
            setChecking(false);
          }
        },
      );
    }, CHECK_DEBOUNCE_MS);
    return () => {
      abort.abort();
      clearTimeout(t);
    };
  }, [stack, text, envText, secretKey]);
  return { issues, checking };
}

export function StackDeployPage({ me }: { me: Me }): JSX.Element {
  const loc = useLocation();
  const from = loc.query.get('stack') ?? '';
  const [loaded, setLoaded] = useState<RevisionDetail | null | 'loading' | Error>(from ? 'loading' : null);
  useEffect(() => {
    if (!from) return;
    const ac = new AbortController();
    (async () => {
      const history = await get<RevisionSummary[]>(`/api/v1/stacks/${encodeURIComponent(from)}/history`, { signal: ac.signal });
      const newest = history[0];
      if (!newest) return null;
      return get<RevisionDetail>(`/api/v1/stacks/${encodeURIComponent(from)}/revisions/${newest.revision}`, { signal: ac.signal });
    })().then(
      (r) => setLoaded(r),
      (e: unknown) => {
        if (!ac.signal.aborted) setLoaded(e instanceof Error ? e : new Error(String(e)));
      },
    );
    return () => ac.abort();
  }, [from]);
  if (loaded === 'loading') return <Loading label="Loading the stack's newest revision…" />;
  if (loaded instanceof Error) return <ErrorState error={loaded} title={`Could not load ${from}`} />;
  return <DeployForm me={me} name={from} base={loaded} />;
}

function DeployForm({ me, name: initialName, base }: { me: Me; name: string; base: RevisionDetail | null }): JSX.Element {
  const f = useStore(fleet);
  const nodes = (f.nodes ?? []).filter((n) => n.status !== 'revoked' && n.status !== 'pending');
  const can = canChangeStacks(me);
  const t = base?.target;
  const [name, setName] = useState(initialName);
  const [compose, setCompose] = useState(base?.compose ?? EXAMPLE);
  const [kind, setKind] = useState<TargetKind>(t ? ('node' in t ? 'node' : 'nodes' in t ? 'nodes' : 'selector') : 'node');
  const [node, setNode] = useState(t && 'node' in t ? t.node : '');
  const [many, setMany] = useState<string[]>(t && 'nodes' in t ? t.nodes : []);
  const [selector, setSelector] = useState(t && 'selector' in t ? `${t.selector.key}=${t.selector.value}` : '');
  const [envText, setEnvText] = useState(
    base
      ? Object.entries(base.env)
          .map(([k, v]) => `${k}=${v}`)
          .join('\n')
      : '',
  );
  const [secrets, setSecrets] = useState<SecretRow[]>((base?.secretEnv ?? []).map((n) => ({ name: n, value: '' })));
  const [parallel, setParallel] = useState(String(base?.parallel ?? 1));
  const [stableS, setStableS] = useState(base ? String(base.gate.stableMs / 1000) : '');
  const [deadlineS, setDeadlineS] = useState(base ? String(base.gate.deadlineMs / 1000) : '');
  const [busy, setBusy] = useState(false);
  const [error, setError] = useState<string | null>(null);
  const [refused, setRefused] = useState<ComposeIssue[] | null>(null);
  const [started, setStarted] = useState<RolloutStarted | null>(null);
  const idempotencyKey = useRef(typeof crypto.randomUUID === 'function' ? crypto.randomUUID() : `${Date.now()}-${Math.random()}`);
  const check = useComposeCheck(
    name,
    compose,
    envText,
    secrets.map((s) => s.name.trim()),
  );
  // A target host that requires signed intent from a key this browser does not hold would refuse
  // the jobs: say so, and do not send them.
  const eq = selector.indexOf('=');
  const targets =
    kind === 'node' ? (node ? [node] : []) : kind === 'nodes' ? many : eq > 0 ? nodes.filter((n) => n.labels?.[selector.slice(0, eq).trim()] === selector.slice(eq + 1).trim()).map((n) => n.name) : [];
  const unsignable = [...useSigningBlocks(targets).values()];

  useEffect(() => {
    if (!node && nodes.length > 0 && kind === 'node') setNode(nodes[0]!.name);
  }, [nodes.length]);

  const onCompose = (text: string): void => {
    setCompose(text);
    setRefused(null);
    idempotencyKey.current = typeof crypto.randomUUID === 'function' ? crypto.randomUUID() : `${Date.now()}-${Math.random()}`;
  };

  const submit = async (e: Event): Promise<void> => {
    e.preventDefault();
    setError(null);
    if (!STACK_NAME.test(name)) return setError('Stack names are lowercase letters, digits, dashes and underscores (a Compose project name).');
    const env = parseEnvLines(envText);
    if (env.bad.length > 0) return setError(`Environment: ${env.bad.join(', ')} ${env.bad.length === 1 ? 'is' : 'are'} not KEY=value.`);
    const secretEnv: Record<string, string> = {};
    for (const s of secrets) {
      if (!s.name.trim() && !s.value) continue;
      if (!/^[A-Za-z_][A-Za-z0-9_]*$/.test(s.name.trim())) return setError(`Secret variable ${JSON.stringify(s.name)}: names are letters, digits and underscores.`);
      secretEnv[s.name.trim()] = s.value;
    }
    let target: DeployInput['target'];
    if (kind === 'node') {
      if (!node) return setError('Choose the node to deploy to.');
      target = { node };
    } else if (kind === 'nodes') {
      if (many.length === 0) return setError('Choose at least one node.');
      target = { nodes: many };
    } else {
      if (!/^[^=]+=.*$/.test(selector.trim())) return setError('A label selector is key=value, e.g. site=shop.');
      target = { selector: selector.trim() };
    }
    const n = Number(parallel);
    if (!Number.isInteger(n) || n < 1) return setError('Parallel is a whole number of nodes, 1 or more.');
    const gate: { stableMs?: number; deadlineMs?: number } = {};
    if (stableS.trim()) gate.stableMs = Math.round(Number(stableS) * 1000);
    if (deadlineS.trim()) gate.deadlineMs = Math.round(Number(deadlineS) * 1000);
    if (Object.values(gate).some((v) => !Number.isFinite(v) || v < 0)) return setError('The gate takes seconds.');
    const body: DeployInput = { compose, target, parallel: n, idempotencyKey: idempotencyKey.current };
    if (Object.keys(env.env).length > 0) body.env = env.env;
    if (Object.keys(secretEnv).length > 0) body.secretEnv = secretEnv;
    if (Object.keys(gate).length > 0) body.gate = gate;
    setBusy(true);
    try {
      const r = await deployStack(name, body);
      // Secret values are write-only: forget them once sent.
      setSecrets((rows) => rows.map((r2) => ({ ...r2, value: '' })));
      setStarted(r);
    } catch (err) {
      if (err instanceof ComposeRefusedError) {
        setRefused(err.issues);
        setError(`The hub refused the Compose file: ${err.message}`);
      } else setError(errorMessage(err));
    } finally {
      setBusy(false);
    }
  };

  if (started) return <DeployProgress started={started} />;

  const issues = refused ?? check.issues;
  return (
    <>
      <PageHeader title={base ? `Deploy ${initialName}` : 'Deploy a stack'} sub={base ? `A new revision after revision ${base.revision}` : 'A new stack, or a new revision of one'}>
        <a class={buttonClass('ghost')} href={base ? `/stacks/${encodeURIComponent(initialName)}` : '/stacks'}>
          Cancel
        </a>
      </PageHeader>
      {!can && (
        <p class="notice" role="note">
          {VIEWER_REASON}
        </p>
      )}
      <form class="deploy-form" onSubmit={(e) => void submit(e)} noValidate>
        <div class="field">
          <label for="stack-name">Stack name</label>
          <input
            id="stack-name"
            value={name}
            required
            maxLength={63}
            autocomplete="off"
            autocapitalize="none"
            spellcheck={false}
            aria-describedby="stack-name-hint"
            onInput={(e) => setName(e.currentTarget.value.toLowerCase())}
          />
          <div class="hint" id="stack-name-hint">
            The Compose project name on each host: lowercase letters, digits, dashes and underscores.
          </div>
        </div>
        <div class="field">
          <label for="compose-text">Compose file</label>
          <ComposeEditor
            id="compose-text"
            value={compose}
            onInput={onCompose}
            issues={issues}
            checking={check.checking && !refused}
            issuesTitle={refused ? 'The hub refused the file' : 'Checked as you type'}
            describedBy="compose-hint"
          />
          <div class="hint" id="compose-hint">
            Checked by the hub as you type (nothing is stored); the hub checks it again when you deploy, and nothing is queued for a file it refuses.
          </div>
        </div>
        <fieldset class="field target-field">
          <legend>Target</legend>
          <div class="radio-row">
            {(['node', 'nodes', 'selector'] as const).map((k) => (
              <label key={k} class="radio">
                <input type="radio" name="target-kind" value={k} checked={kind === k} onChange={() => setKind(k)} />
                {k === 'node' ? 'One node' : k === 'nodes' ? 'Several nodes' : 'Nodes with a label'}
              </label>
            ))}
          </div>
          {kind === 'node' && (
            <div class="field">
              <label for="target-node">Node</label>
              <select id="target-node" value={node} onChange={(e) => setNode(e.currentTarget.value)}>
                {nodes.length === 0 && <option value="">No nodes</option>}
                {nodes.map((n) => (
                  <option key={n.name} value={n.name}>
                    {n.name} ({n.status})
                  </option>
                ))}
              </select>
            </div>
          )}
          {kind === 'nodes' && (
            <div class="check-list" role="group" aria-label="Nodes">
              {nodes.map((n) => (
                <label key={n.name} class="check">
                  <input type="checkbox" checked={many.includes(n.name)} onChange={(e) => setMany((m) => (e.currentTarget.checked ? [...m, n.name] : m.filter((x) => x !== n.name)))} />
                  {n.name} <span class="muted small">({n.status})</span>
                </label>
              ))}
            </div>
          )}
          {kind === 'selector' && (
            <div class="field">
              <label for="target-selector">Label selector</label>
              <input
                id="target-selector"
                value={selector}
                placeholder="site=shop"
                autocomplete="off"
                spellcheck={false}
                aria-describedby="selector-hint"
                onInput={(e) => setSelector(e.currentTarget.value)}
              />
              <div class="hint" id="selector-hint">
                key=value. Every node carrying that label when you deploy gets the stack; set labels on the Nodes page.
              </div>
            </div>
          )}
        </fieldset>
        <div class="field">
          <label for="stack-env">Environment</label>
          <textarea id="stack-env" class="mono" rows={3} value={envText} spellcheck={false} placeholder="TAG=1.4.2" aria-describedby="env-hint" onInput={(e) => setEnvText(e.currentTarget.value)} />
          <div class="hint" id="env-hint">
            KEY=value per line, for <code>${'{VAR}'}</code> in the file. Stored with the revision and shown in its history.
          </div>
        </div>
        <fieldset class="field">
          <legend>Secret environment</legend>
          <p class="hint" id="secret-hint">
            Encrypted at the hub and never shown again, not here, not in the API or job logs.
            {base && base.secretEnv.length > 0 ? ' The previous revision had the names below: enter their values again to deploy.' : ''}
          </p>
          {secrets.map((s, i) => (
            <div class="secret-row" key={i}>
              <label class="sr-only" for={`secret-name-${i}`}>
                Secret {i + 1} name
              </label>
              <input
                id={`secret-name-${i}`}
                class="mono"
                placeholder="DB_PASSWORD"
                value={s.name}
                autocomplete="off"
                spellcheck={false}
                onInput={(e) => {
                  const v = e.currentTarget.value;
                  setSecrets((rows) => rows.map((r, j) => (j === i ? { ...r, name: v } : r)));
                }}
              />
              <label class="sr-only" for={`secret-value-${i}`}>
                Secret {i + 1} value
              </label>
              <input
                id={`secret-value-${i}`}
                type="password"
                placeholder="value"
                value={s.value}
                autocomplete="new-password"
                aria-describedby="secret-hint"
                onInput={(e) => {
                  const v = e.currentTarget.value;
                  setSecrets((rows) => rows.map((r, j) => (j === i ? { ...r, value: v } : r)));
                }}
              />
              <button type="button" class={buttonClass('ghost', true)} onClick={() => setSecrets((rows) => rows.filter((_, j) => j !== i))}>
                Remove<span class="sr-only"> secret {i + 1}</span>
              </button>
            </div>
          ))}
          <button type="button" class={buttonClass('default', true)} onClick={() => setSecrets((rows) => [...rows, { name: '', value: '' }])}>
            Add a secret variable
          </button>
        </fieldset>
        <div class="field-row">
          <div class="field">
            <label for="stack-parallel">Parallel</label>
            <input id="stack-parallel" type="number" min={1} inputMode="numeric" value={parallel} aria-describedby="parallel-hint" onInput={(e) => setParallel(e.currentTarget.value)} />
            <div class="hint" id="parallel-hint">
              Nodes per wave; the rollout stops at the first failed node.
            </div>
          </div>
          <div class="field">
            <label for="gate-stable">Stable window (s)</label>
            <input id="gate-stable" type="number" min={0} step="any" placeholder="10" value={stableS} onInput={(e) => setStableS(e.currentTarget.value)} />
          </div>
          <div class="field">
            <label for="gate-deadline">Gate deadline (s)</label>
            <input id="gate-deadline" type="number" min={1} step="any" placeholder="120" value={deadlineS} onInput={(e) => setDeadlineS(e.currentTarget.value)} />
          </div>
        </div>
        <InlineError>{error}</InlineError>
        {can && unsignable.map((reason) => <SigningNeeded key={reason} reason={reason} />)}
        <div class="form-actions">
          <SubmitButton busy={busy} disabled={!can || unsignable.length > 0}>
            Deploy
          </SubmitButton>
          {!can && <span class="muted small">{VIEWER_REASON}</span>}
        </div>
      </form>
    </>
  );
}

/** The rollout's jobs as they are filed (waves), each live until it ends. */
function DeployProgress({ started }: { started: RolloutStarted }): JSX.Element {
  const [rollout, setRollout] = useState<RolloutView | null>(null);
  const enc = encodeURIComponent(started.stack);
  useEffect(() => {
    let stop = false;
    let timer: ReturnType<typeof setTimeout> | null = null;
    const tick = async (): Promise<void> => {
      try {
        const r = await get<RolloutView>(`/api/v1/stacks/${enc}/rollouts/${encodeURIComponent(started.rollout)}`);
        if (stop) return;
        setRollout(r);
        if (r.state !== 'running') return;
      } catch {
        /* try again */
      }
      if (!stop) timer = setTimeout(() => void tick(), 1000);
    };
    void tick();
    return () => {
      stop = true;
      if (timer) clearTimeout(timer);
    };
  }, [started.rollout]);
  const jobs = rollout?.jobs ?? started.jobs;
  return (
    <>
      <PageHeader title={`Deploying ${started.stack}`} sub={`Revision ${started.revision}`}>
        <a class={buttonClass('default')} href={`/stacks/${enc}`}>
          Go to the stack
        </a>
      </PageHeader>
      <p class="rollout-state" role="status" aria-live="polite">
        Rollout: <StateBadge state={rollout?.state ?? 'running'} />
        {rollout?.stoppedAtNode && <> stopped at {rollout.stoppedAtNode}</>}
        {rollout?.error && <span class="bad-text"> {rollout.error}</span>}
      </p>
      {jobs.length === 0 && <p class="muted">No job filed yet.</p>}
      {jobs.map((id) => (
        <JobProgress key={id} id={id} />
      ))}
    </>
  );
}
