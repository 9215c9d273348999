/**
 * Modal dialogs on the native <dialog> element (top layer, inert background), with focus kept
 * inside, Escape to close, and focus handed back to where it was. `confirmAction()` asks a
 * yes/no question (with an optional checkbox, e.g. "force") and resolves with the answer.
 */
import type { ComponentChildren, JSX } from 'preact';
import { useEffect, useId, useLayoutEffect, useRef, useState } from 'preact/hooks';
import { createStore, useStore } from '../lib/store.ts';
import { buttonClass } from './ui.tsx';

const FOCUSABLE = 'a[href], button:not([disabled]), input:not([disabled]):not([type="hidden"]), select:not([disabled]), textarea:not([disabled]), summary, [tabindex]:not([tabindex="-1"])';

function focusables(root: HTMLElement): HTMLElement[] {
  return [...root.querySelectorAll<HTMLElement>(FOCUSABLE)].filter((el) => el.offsetParent !== null || el === document.activeElement);
}

export interface DialogProps {
  title: ComponentChildren;
  onClose: () => void;
  children: ComponentChildren;
  /** Buttons row; rendered after the body. */
  footer?: ComponentChildren;
  wide?: boolean;
  /** Role alertdialog for confirmations. */
  alert?: boolean;
  /** Escape / backdrop don't close while something runs. */
  busy?: boolean;
}

export function Dialog({ title, onClose, children, footer, wide, alert, busy }: DialogProps): JSX.Element {
  const ref = useRef<HTMLDialogElement>(null);
  const titleId = useId();
  const closeRef = useRef(onClose);
  closeRef.current = onClose;
  const busyRef = useRef(busy);
  busyRef.current = busy;

  useLayoutEffect(() => {
    const dlg = ref.current;
    if (!dlg) return;
    const previous = document.activeElement as HTMLElement | null;
    if (!dlg.open) {
      try {
        dlg.showModal();
      } catch {
        dlg.setAttribute('open', '');
      }
    }
    const first = dlg.querySelector<HTMLElement>('[autofocus], [data-autofocus]') ?? dlg.querySelector<HTMLElement>('input, select, textarea') ?? focusables(dlg)[0];
    first?.focus();
    return () => {
      if (dlg.open) dlg.close();
      if (previous && document.contains(previous)) previous.focus();
    };
  }, []);

  useEffect(() => {
    const dlg = ref.current;
    if (!dlg) return;
    const onCancel = (e: Event): void => {
      e.preventDefault();
      if (!busyRef.current) closeRef.current();
    };
    const onKey = (e: KeyboardEvent): void => {
      if (e.key === 'Escape') {
        e.preventDefault();
        e.stopPropagation();
        if (!busyRef.current) closeRef.current();
        return;
      }
      if (e.key !== 'Tab') return;
      const els = focusables(dlg);
      if (els.length === 0) {
        e.preventDefault();
        return;
      }
      const first = els[0]!;
      const last = els[els.length - 1]!;
      const active = document.activeElement;
      if (e.shiftKey && (active === first || !dlg.contains(active))) {
        e.preventDefault();
        last.focus();
      } else if (!e.shiftKey && (active === last || !dlg.contains(active))) {
        e.preventDefault();
        first.focus();
      }
    };
    const onClick = (e: MouseEvent): void => {
      // A click on the backdrop lands on the <dialog> itself, outside its box.
      if (e.target !== dlg || busyRef.current) return;
      const r = dlg.getBoundingClientRect();
      if (e.clientX < r.left || e.clientX > r.right || e.clientY < r.top || e.clientY > r.bottom) closeRef.current();
    };
    dlg.addEventListener('cancel', onCancel);
    dlg.addEventListener('keydown', onKey);
    dlg.addEventListener('click', onClick);
    return () => {
      dlg.removeEventListener('cancel', onCancel);
      dlg.removeEventListener('keydown', onKey);
      dlg.removeEventListener('click', onClick);
    };
  }, []);

  return (
    <dialog ref={ref} class={`dialog${wide ? ' dialog-wide' : ''}`} aria-labelledby={titleId} role={alert ? 'alertdialog' : undefined} aria-modal="true">
      <div class="dialog-head">
        <h2 id={titleId}>{title}</h2>
        <button type="button" class="icon-btn" aria-label="Close" onClick={() => !busyRef.current && onClose()}>
          <svg viewBox="0 0 16 16" width="16" height="16" aria-hidden="true">
            <path d="M3.5 3.5l9 9m0-9l-9 9" stroke="currentColor" stroke-width="1.6" fill="none" stroke-linecap="round" />
          </svg>
        </button>
      </div>
      <div class="dialog-body">{children}</div>
      {footer && <div class="dialog-foot">{footer}</div>}
    </dialog>
  );
}

// ---------------------------------------------------------------------------------------------
// confirmAction()

export interface ConfirmOptions {
  title: string;
  body?: ComponentChildren;
  confirmLabel: string;
  danger?: boolean;
  /** An extra checkbox (e.g. "Force"), its answer comes back in `checked`. */
  checkbox?: { label: string; checked?: boolean; hint?: string };
  /** Require typing this text to enable the confirm button. */
  typeToConfirm?: string;
}

interface Pending extends ConfirmOptions {
  resolve: (r: { checked: boolean } | null) => void;
}

const pending = createStore<Pending | null>(null);

/** Asks for confirmation; resolves with `{checked}` if confirmed, null if cancelled. */
export function confirmAction(opts: ConfirmOptions): Promise<{ checked: boolean } | null> {
  return new Promise((resolve) => {
    const prev = pending.get();
    if (prev) prev.resolve(null);
    pending.set({ ...opts, resolve });
  });
}

export function ConfirmHost(): JSX.Element | null {
  const p = useStore(pending);
  if (!p) return null;
  return <ConfirmDialog key={p.title + p.confirmLabel} p={p} />;
}

function ConfirmDialog({ p }: { p: Pending }): JSX.Element {
  const [checked, setChecked] = useState(p.checkbox?.checked ?? false);
  const [typed, setTyped] = useState('');
  const checkId = useId();
  const typeId = useId();
  const finish = (r: { checked: boolean } | null): void => {
    pending.set(null);
    p.resolve(r);
  };
  const ok = !p.typeToConfirm || typed === p.typeToConfirm;
  return (
    <Dialog
      title={p.title}
      alert
      onClose={() => finish(null)}
      footer={
        <>
          <button type="button" class={buttonClass('default')} onClick={() => finish(null)}>
            Cancel
          </button>
          <button type="submit" form={`${checkId}-form`} class={buttonClass(p.danger ? 'danger' : 'primary')} disabled={!ok} data-autofocus={p.typeToConfirm ? undefined : ''}>
            {p.confirmLabel}
          </button>
        </>
      }
    >
      <form
        id={`${checkId}-form`}
        onSubmit={(e) => {
          e.preventDefault();
          if (ok) finish({ checked });
        }}
      >
        {p.body && <div class="confirm-body">{p.body}</div>}
        {p.checkbox && (
          <div class="check">
            <input id={checkId} type="checkbox" checked={checked} onChange={(e) => setChecked(e.currentTarget.checked)} />
            <label for={checkId}>{p.checkbox.label}</label>
            {p.checkbox.hint && <div class="hint">{p.checkbox.hint}</div>}
          </div>
        )}
        {p.typeToConfirm && (
          <div class="field">
            <label for={typeId}>
              Type <code>{p.typeToConfirm}</code> to confirm
            </label>
            <input id={typeId} autocomplete="off" spellcheck={false} value={typed} onInput={(e) => setTyped(e.currentTarget.value)} />
          </div>
        )}
      </form>
    </Dialog>
  );
}
