/** A minimal observable value with a Preact hook; notifications are coalesced per tick. */
import { useEffect, useState } from 'preact/hooks';

export interface Store<T> {
  get(): T;
  set(next: T | ((prev: T) => T)): void;
  subscribe(fn: (v: T) => void): () => void;
}

export function createStore<T>(initial: T, opts: { coalesceMs?: number } = {}): Store<T> {
  let value = initial;
  const subs = new Set<(v: T) => void>();
  let scheduled: ReturnType<typeof setTimeout> | null = null;
  const flush = (): void => {
    scheduled = null;
    for (const s of [...subs]) s(value);
  };
  return {
    get: () => value,
    set(next) {
      const v = typeof next === 'function' ? (next as (p: T) => T)(value) : next;
      if (Object.is(v, value)) return;
      value = v;
      if (opts.coalesceMs === undefined) flush();
      else if (scheduled === null) scheduled = setTimeout(flush, opts.coalesceMs);
    },
    subscribe(fn) {
      subs.add(fn);
      return () => void subs.delete(fn);
    },
  };
}

export function useStore<T>(store: Store<T>): T {
  const [v, setV] = useState(() => store.get());
  useEffect(() => {
    const unsub = store.subscribe(setV);
    if (store.get() !== v) setV(store.get());
    return unsub;
  }, [store]);
  return v;
}
