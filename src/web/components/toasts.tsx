/** Transient messages: results of actions (success politely, errors assertively). */
import type { JSX } from 'preact';
import { createStore, useStore } from '../lib/store.ts';

export interface Toast {
  id: number;
  kind: 'success' | 'error' | 'info';
  text: string;
}

const toasts = createStore<Toast[]>([]);
let nextId = 1;

function add(kind: Toast['kind'], text: string, ms: number): void {
  const id = nextId++;
  toasts.set((list) => [...list.slice(-4), { id, kind, text }]);
  setTimeout(() => dismiss(id), ms);
}

export function dismiss(id: number): void {
  toasts.set((list) => list.filter((t) => t.id !== id));
}

export const toast = {
  success: (text: string): void => add('success', text, 5000),
  info: (text: string): void => add('info', text, 5000),
  error: (text: string): void => add('error', text, 10000),
};

export function ToastHost(): JSX.Element {
  const list = useStore(toasts);
  return (
    <div class="toasts">
      <div aria-live="polite" class="toast-region">
        {list
          .filter((t) => t.kind !== 'error')
          .map((t) => (
            <div key={t.id} class={`toast toast-${t.kind}`} role="status">
              <span>{t.text}</span>
              <button type="button" class="toast-close" aria-label="Dismiss" onClick={() => dismiss(t.id)}>
                ×
              </button>
            </div>
          ))}
      </div>
      <div aria-live="assertive" class="toast-region">
        {list
          .filter((t) => t.kind === 'error')
          .map((t) => (
            <div key={t.id} class="toast toast-error" role="alert">
              <span>{t.text}</span>
              <button type="button" class="toast-close" aria-label="Dismiss" onClick={() => dismiss(t.id)}>
                ×
              </button>
            </div>
          ))}
      </div>
    </div>
  );
}
