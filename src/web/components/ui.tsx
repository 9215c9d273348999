/** Small shared pieces: buttons with progress, status badges, states, copy, key facts, JSON. */
import type { ButtonHTMLAttributes, ComponentChildren, JSX } from 'preact';
import { useCallback, useEffect, useRef, useState } from 'preact/hooks';
import { errorMessage } from '../lib/api.ts';
import { toast } from './toasts.tsx';

export function Spinner({ label }: { label?: string }): JSX.Element {
  return <span class="spinner" role={label ? 'status' : undefined} aria-label={label} aria-hidden={label ? undefined : 'true'} />;
}

type ButtonVariant = 'primary' | 'danger' | 'default' | 'ghost' | 'link';

export interface ActionButtonProps<C = true> extends Omit<ButtonHTMLAttributes<HTMLButtonElement>, 'onClick' | 'onError' | 'size' | 'disabled'> {
  /** May be async: the button shows progress until it settles. Gets what `confirm` resolved to. */
  onClick: (confirmed: C) => unknown;
  /** Asked first (e.g. a confirmation dialog); a falsy answer cancels. No progress shows meanwhile. */
  confirm?: () => Promise<C | null | false | undefined>;
  variant?: ButtonVariant;
  small?: boolean;
  /** Error handling: by default a toast shows the error message. */
  onError?: (err: unknown) => void;
  /** Label prefix for the error toast, e.g. "Stop web". */
  what?: string;
  disabled?: boolean;
  children: ComponentChildren;
}

export function buttonClass(variant: ButtonVariant = 'default', small = false, extra = ''): string {
  return ['btn', `btn-${variant}`, small ? 'btn-sm' : '', extra].filter(Boolean).join(' ');
}

/**
 * A real <button> that runs an (async) action and shows progress while it runs. While busy it
 * is aria-disabled rather than disabled, so keyboard focus stays on it.
 */
export function ActionButton<C = true>({ onClick, confirm, variant = 'default', small, onError, what, disabled, children, class: cls, ...rest }: ActionButtonProps<C>): JSX.Element {
  const [busy, setBusy] = useState(false);
  const running = useRef(false);
  const alive = useRef(true);
  useEffect(() => () => void (alive.current = false), []);
  const run = async (): Promise<void> => {
    if (running.current || disabled) return;
    running.current = true;
    try {
      let answer: C = true as C;
      if (confirm) {
        const a = await confirm();
        if (!a) return;
        answer = a;
      }
      if (alive.current) setBusy(true);
      await onClick(answer);
    } catch (err) {
      if (onError) onError(err);
      else toast.error(what ? `${what}: ${errorMessage(err)}` : errorMessage(err));
    } finally {
      running.current = false;
      if (alive.current) setBusy(false);
    }
  };
  return (
    <button
      type="button"
      {...rest}
      class={buttonClass(variant, small, `${busy ? 'is-busy' : ''} ${typeof cls === 'string' ? cls : ''}`.trim())}
      disabled={disabled}
      aria-disabled={busy ? 'true' : undefined}
      aria-busy={busy ? 'true' : undefined}
      onClick={() => void run()}
    >
      {busy && <Spinner />}
      {children}
    </button>
  );
}

export function SubmitButton({ busy, children, variant = 'primary', disabled }: { busy: boolean; children: ComponentChildren; variant?: ButtonVariant; disabled?: boolean }): JSX.Element {
  return (
    <button type="submit" class={buttonClass(variant, false, busy ? 'is-busy' : '')} disabled={busy || disabled} aria-busy={busy ? 'true' : undefined}>
      {busy && <Spinner />}
      {children}
    </button>
  );
}

const STATUS_TONE: Record<string, string> = {
  online: 'ok',
  running: 'ok',
  up: 'ok',
  healthy: 'ok',
  pending: 'warn',
  paused: 'warn',
  restarting: 'warn',
  created: 'info',
  starting: 'warn',
  offline: 'muted',
  exited: 'muted',
  down: 'bad',
  unknown: 'muted',
  revoked: 'bad',
  dead: 'bad',
  removing: 'warn',
  unhealthy: 'bad',
  succeeded: 'ok',
  failed: 'bad',
  waiting: 'info',
  sending: 'warn',
  skipped: 'muted',
};

export function StatusBadge({ status, title }: { status: string; title?: string }): JSX.Element {
  const tone = STATUS_TONE[status] ?? 'muted';
  return (
    <span class={`badge badge-${tone}`} title={title}>
      <span class="dot" aria-hidden="true" />
      {status}
    </span>
  );
}

export function Loading({ label = 'Loading…' }: { label?: string }): JSX.Element {
  return (
    <div class="state state-loading" role="status">
      <Spinner />
      <span>{label}</span>
    </div>
  );
}

export function Empty({ title, children }: { title: string; children?: ComponentChildren }): JSX.Element {
  return (
    <div class="state state-empty">
      <p class="state-title">{title}</p>
      {children && <div class="state-body">{children}</div>}
    </div>
  );
}

export function ErrorState({ error, onRetry, title = 'Something went wrong' }: { error: unknown; onRetry?: () => void; title?: string }): JSX.Element {
  return (
    <div class="state state-error" role="alert">
      <p class="state-title">{title}</p>
      <p class="state-body">{errorMessage(error)}</p>
      {onRetry && (
        <button type="button" class={buttonClass('default')} onClick={onRetry}>
          Retry
        </button>
      )}
    </div>
  );
}

export function InlineError({ children }: { children: ComponentChildren }): JSX.Element | null {
  if (!children) return null;
  return (
    <p class="inline-error" role="alert">
      {children}
    </p>
  );
}

async function copyText(text: string): Promise<void> {
  if (navigator.clipboard?.writeText) {
    try {
      await navigator.clipboard.writeText(text);
      return;
    } catch {
      /* fall back below */
    }
  }
  const ta = document.createElement('textarea');
  ta.value = text;
  ta.setAttribute('readonly', '');
  ta.style.position = 'fixed';
  ta.style.opacity = '0';
  document.body.appendChild(ta);
  ta.select();
  const ok = document.execCommand('copy');
  ta.remove();
  if (!ok) throw new Error('Copy failed: select the text and copy it yourself.');
}

export function CopyButton({ text, label = 'Copy', small }: { text: string; label?: string; small?: boolean }): JSX.Element {
  const [copied, setCopied] = useState(false);
  useEffect(() => {
    if (!copied) return;
    const t = setTimeout(() => setCopied(false), 2000);
    return () => clearTimeout(t);
  }, [copied]);
  return (
    <button
      type="button"
      class={buttonClass('default', small ?? true)}
      onClick={() =>
        copyText(text).then(
          () => setCopied(true),
          (e: unknown) => toast.error(errorMessage(e)),
        )
      }
    >
      {copied ? 'Copied' : label}
      <span class="sr-only" aria-live="polite">
        {copied ? ' — copied to clipboard' : ''}
      </span>
    </button>
  );
}

/** A value shown in monospace with a copy button beside it. */
export function CopyField({ value, label }: { value: string; label: string }): JSX.Element {
  return (
    <div class="copy-field">
      <code class="copy-value" aria-label={label}>
        {value}
      </code>
      <CopyButton text={value} label={`Copy`} />
    </div>
  );
}

export function KeyFacts({ items }: { items: Array<[string, ComponentChildren] | null | false> }): JSX.Element {
  return (
    <dl class="facts">
      {items
        .filter((x): x is [string, ComponentChildren] => !!x)
        .map(([k, v]) => (
          <div class="fact" key={k}>
            <dt>{k}</dt>
            <dd>{v === '' || v === null || v === undefined ? '—' : v}</dd>
          </div>
        ))}
    </dl>
  );
}

export function RawJson({ value, summary = 'Raw JSON' }: { value: unknown; summary?: string }): JSX.Element {
  const text = JSON.stringify(value, null, 2);
  return (
    <details class="raw-json">
      <summary>{summary}</summary>
      <div class="raw-json-actions">
        <CopyButton text={text} label="Copy JSON" />
      </div>
      <pre>{text}</pre>
    </details>
  );
}

export function PageHeader({ title, children, sub }: { title: ComponentChildren; children?: ComponentChildren; sub?: ComponentChildren }): JSX.Element {
  return (
    <div class="page-header">
      <div class="page-title">
        <h1>{title}</h1>
        {sub && <div class="page-sub">{sub}</div>}
      </div>
      {children && <div class="page-actions">{children}</div>}
    </div>
  );
}

export interface AsyncState<T> {
  data: T | undefined;
  error: unknown;
  loading: boolean;
  reload: () => void;
  setData: (d: T) => void;
}

/** Runs `fn` when deps change; the previous result stays shown while reloading. */
export function useAsync<T>(fn: (signal: AbortSignal) => Promise<T>, deps: unknown[]): AsyncState<T> {
  const [data, setData] = useState<T | undefined>(undefined);
  const [error, setError] = useState<unknown>(null);
  const [loading, setLoading] = useState(true);
  const [tick, setTick] = useState(0);
  useEffect(() => {
    const ac = new AbortController();
    setLoading(true);
    setError(null);
    fn(ac.signal).then(
      (d) => {
        if (ac.signal.aborted) return;
        setData(d);
        setLoading(false);
      },
      (err: unknown) => {
        if (ac.signal.aborted) return;
        setError(err);
        setLoading(false);
      },
    );
    return () => ac.abort();
  }, [...deps, tick]);
  const reload = useCallback(() => setTick((t) => t + 1), []);
  return { data, error, loading, reload, setData };
}

/** Renders loading / error / content for an AsyncState. */
export function AsyncView<T>({
  state,
  children,
  loadingLabel,
  errorTitle,
}: {
  state: AsyncState<T>;
  children: (data: T) => ComponentChildren;
  loadingLabel?: string;
  errorTitle?: string;
}): JSX.Element {
  if (state.data === undefined) {
    if (state.error) return <ErrorState error={state.error} onRetry={state.reload} {...(errorTitle ? { title: errorTitle } : {})} />;
    return <Loading {...(loadingLabel ? { label: loadingLabel } : {})} />;
  }
  return (
    <>
      {state.error ? <ErrorState error={state.error} onRetry={state.reload} title="Could not refresh" /> : null}
      {children(state.data)}
    </>
  );
}

/** Re-renders every `ms` (relative times). */
export function useTicker(ms: number): number {
  const [n, setN] = useState(0);
  useEffect(() => {
    const t = setInterval(() => setN((x) => x + 1), ms);
    return () => clearInterval(t);
  }, [ms]);
  return n;
}

/** A responsive table with a screen-reader caption and plain column headers; the last column
 * holds row actions (its header is for screen readers only). `after` goes below the table. */
export function DataTable({ caption, columns, after, children }: { caption: ComponentChildren; columns: string[]; after?: ComponentChildren; children: ComponentChildren }): JSX.Element {
  return (
    <div class="table-wrap">
      <table class="table responsive">
        <caption class="sr-only">{caption}</caption>
        <thead>
          <tr>
            {columns.map((c) => (
              <th key={c} scope="col">
                {c}
              </th>
            ))}
            <th scope="col">
              <span class="sr-only">Actions</span>
            </th>
          </tr>
        </thead>
        <tbody>{children}</tbody>
      </table>
      {after}
    </div>
  );
}
