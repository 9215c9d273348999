/**
 * A container's logs, followed live over fetch() + ReadableStream. Lines go into a bounded
 * buffer (the last 5,000) and only the rows in view are rendered, so a chatty container cannot
 * freeze the tab.
 */
import type { JSX } from 'preact';
import { useCallback, useEffect, useLayoutEffect, useMemo, useRef, useState } from 'preact/hooks';
import { Icon } from '../components/icons.tsx';
import { Spinner, buttonClass } from '../components/ui.tsx';
import { dockerPath, errorFrom, signDocker } from '../lib/api.ts';
import { BoundedLines, LogDecoder, linesToText, type LogLine } from '../lib/docker-stream.ts';

export const LOG_CAPACITY = 5000;
const ROW = 20; // px; must match .log-row in styles.css

type Status = 'connecting' | 'streaming' | 'ended' | 'error';

function formatTime(t: string | null): string {
  if (!t) return '';
  const d = new Date(t);
  if (Number.isNaN(d.getTime())) return t;
  const frac = /\.(\d{1,3})/.exec(t)?.[1]?.padEnd(3, '0') ?? '000';
  const p = (n: number): string => String(n).padStart(2, '0');
  return `${p(d.getHours())}:${p(d.getMinutes())}:${p(d.getSeconds())}.${frac}`;
}

export function LogsView({ node, id, name, tty, running }: { node: string; id: string; name: string; tty: boolean; running: boolean }): JSX.Element {
  const buffer = useRef(new BoundedLines<LogLine>(LOG_CAPACITY));
  const [version, setVersion] = useState(0);
  const [status, setStatus] = useState<Status>('connecting');
  const [error, setError] = useState<string | null>(null);
  const [follow, setFollow] = useState(true);
  const [search, setSearch] = useState('');
  const [showTime, setShowTime] = useState(true);
  const [tail, setTail] = useState('500');
  const [attempt, setAttempt] = useState(0);
  const frame = useRef<number | null>(null);

  const bump = useCallback(() => {
    if (frame.current !== null) return;
    const run = (): void => {
      frame.current = null;
      setVersion((v) => v + 1);
    };
    // rAF pauses in background tabs, and that is fine: nothing needs drawing there.
    frame.current = typeof requestAnimationFrame === 'function' ? requestAnimationFrame(run) : (setTimeout(run, 50) as unknown as number);
  }, []);

  useEffect(() => {
    const ac = new AbortController();
    buffer.current.clear();
    setVersion((v) => v + 1);
    setStatus('connecting');
    setError(null);
    const url = dockerPath(node, `/containers/${encodeURIComponent(id)}/logs?follow=1&stdout=1&stderr=1&timestamps=1&tail=${tail}`);
    void (async () => {
      try {
        // A host requiring signed intent for "all" calls wants this read signed too.
        const { headers: intent } = await signDocker('GET', url);
        const res = await fetch(url, { signal: ac.signal, credentials: 'same-origin', headers: { Accept: 'application/octet-stream, text/plain, */*', ...intent } });
        if (!res.ok) throw await errorFrom(res);
        if (!res.body) throw new Error('This browser cannot stream responses.');
        setStatus('streaming');
        const decoder = new LogDecoder({ tty, timestamps: true });
        const reader = res.body.getReader();
        let slice = performance.now();
        for (;;) {
          const { done, value } = await reader.read();
          if (done) break;
          const lines = decoder.push(value);
          if (lines.length) {
            buffer.current.push(lines);
            bump();
          }
          // A container that logs faster than we can parse would keep this loop busy forever
          // (reads resolve as microtasks): give the page a turn every few milliseconds. Not
          // reading meanwhile pushes back on the hub, the agent and the engine.
          if (performance.now() - slice > 12) {
            await new Promise((r) => setTimeout(r, 0));
            if (ac.signal.aborted) return;
            slice = performance.now();
          }
        }
        const rest = decoder.end();
        if (rest.length) buffer.current.push(rest);
        bump();
        setStatus('ended');
      } catch (err) {
        if (ac.signal.aborted) return;
        setError(err instanceof Error ? err.message : String(err));
        setStatus('error');
      }
    })();
    return () => {
      ac.abort();
      if (frame.current !== null) {
        if (typeof cancelAnimationFrame === 'function') cancelAnimationFrame(frame.current);
        frame.current = null;
      }
    };
  }, [node, id, tty, tail, attempt]);

  const all = buffer.current.lines;
  const dropped = buffer.current.dropped;
  const needle = search.trim().toLowerCase();
  const shown = useMemo(() => (needle ? all.filter((l) => l.text.toLowerCase().includes(needle)) : all), [version, needle]);

  const download = (): void => {
    const blob = new Blob([linesToText(buffer.current.lines)], { type: 'text/plain;charset=utf-8' });
    const a = document.createElement('a');
    const stamp = new Date().toISOString().replace(/[:.]/g, '-').slice(0, 19);
    a.href = URL.createObjectURL(blob);
    a.download = `${name}-${node}-${stamp}.log`;
    document.body.appendChild(a);
    a.click();
    a.remove();
    setTimeout(() => URL.revokeObjectURL(a.href), 10_000);
  };

  return (
    <section class="logs" aria-label={`Logs of ${name}`}>
      <div class="toolbar">
        <div class="field field-inline grow">
          <label for="log-search" class="sr-only">
            Search logs
          </label>
          <span class="input-icon">
            <Icon name="search" size={16} />
          </span>
          <input id="log-search" type="search" placeholder="Search loaded lines" value={search} onInput={(e) => setSearch(e.currentTarget.value)} autocomplete="off" />
        </div>
        <div class="field field-inline">
          <label for="log-tail">History</label>
          <select id="log-tail" value={tail} onChange={(e) => setTail(e.currentTarget.value)}>
            <option value="100">last 100</option>
            <option value="500">last 500</option>
            <option value="2000">last 2,000</option>
            <option value="5000">last 5,000</option>
          </select>
        </div>
        <div class="check">
          <input id="log-follow" type="checkbox" checked={follow} onChange={(e) => setFollow(e.currentTarget.checked)} />
          <label for="log-follow">Follow</label>
        </div>
        <div class="check">
          <input id="log-time" type="checkbox" checked={showTime} onChange={(e) => setShowTime(e.currentTarget.checked)} />
          <label for="log-time">Timestamps</label>
        </div>
        <button type="button" class={buttonClass('default', true)} onClick={download} disabled={all.length === 0}>
          <Icon name="download" size={15} />
          Download
        </button>
        <button
          type="button"
          class={buttonClass('ghost', true)}
          onClick={() => {
            buffer.current.clear();
            setVersion((v) => v + 1);
          }}
          disabled={all.length === 0}
        >
          Clear
        </button>
      </div>
      <div class="log-status" role="status">
        {status === 'connecting' && (
          <>
            <Spinner /> Connecting…
          </>
        )}
        {status === 'streaming' && (
          <>
            <span class="dot dot-live" aria-hidden="true" /> {running ? 'Following live output' : 'Loading'}
          </>
        )}
        {status === 'ended' && <>Stream ended{running ? '' : ' (the container is not running)'}.</>}
        {status === 'error' && <span class="bad-text">Logs failed: {error}</span>}
        <span class="muted">
          {' · '}
          {needle ? `${shown.length.toLocaleString()} of ${all.length.toLocaleString()} lines match` : `${all.length.toLocaleString()} lines`}
          {dropped > 0 && ` (showing the last ${LOG_CAPACITY.toLocaleString()}; ${dropped.toLocaleString()} older dropped)`}
        </span>
        {(status === 'ended' || status === 'error') && (
          <button type="button" class={buttonClass('link', true)} onClick={() => setAttempt((a) => a + 1)}>
            Reconnect
          </button>
        )}
      </div>
      <LogViewport
        lines={shown}
        follow={follow}
        setFollow={setFollow}
        needle={needle}
        showTime={showTime}
        version={version}
        empty={status === 'connecting' ? 'Connecting…' : needle ? 'No loaded line matches.' : 'No output yet.'}
      />
    </section>
  );
}

function Highlight({ text, needle }: { text: string; needle: string }): JSX.Element {
  if (!needle) return <>{text}</>;
  const lower = text.toLowerCase();
  const parts: Array<string | JSX.Element> = [];
  let i = 0;
  let k = 0;
  for (;;) {
    const j = lower.indexOf(needle, i);
    if (j < 0) break;
    if (j > i) parts.push(text.slice(i, j));
    parts.push(<mark key={k++}>{text.slice(j, j + needle.length)}</mark>);
    i = j + needle.length;
  }
  parts.push(text.slice(i));
  return <>{parts}</>;
}

function LogViewport({
  lines,
  follow,
  setFollow,
  needle,
  showTime,
  version,
  empty,
}: {
  lines: readonly LogLine[];
  follow: boolean;
  setFollow: (f: boolean) => void;
  needle: string;
  showTime: boolean;
  version: number;
  empty: string;
}): JSX.Element {
  const ref = useRef<HTMLDivElement>(null);
  const [scrollTop, setScrollTop] = useState(0);
  const [height, setHeight] = useState(480);
  const programmatic = useRef(false);
  const raf = useRef<number | null>(null);

  useEffect(() => {
    const el = ref.current;
    if (!el) return;
    setHeight(el.clientHeight);
    if (typeof ResizeObserver === 'undefined') return;
    const ro = new ResizeObserver(() => setHeight(el.clientHeight));
    ro.observe(el);
    return () => ro.disconnect();
  }, []);

  // Follow: stick to the bottom as lines arrive.
  useLayoutEffect(() => {
    const el = ref.current;
    if (!el || !follow) return;
    const target = Math.max(0, lines.length * ROW - el.clientHeight);
    if (Math.abs(el.scrollTop - target) > 1) {
      programmatic.current = true;
      el.scrollTop = target;
    }
    setScrollTop(el.scrollTop);
  }, [version, lines.length, follow, height]);

  const onScroll = (): void => {
    const el = ref.current;
    if (!el) return;
    if (raf.current === null) {
      raf.current = requestAnimationFrame(() => {
        raf.current = null;
        setScrollTop(el.scrollTop);
      });
    }
    if (programmatic.current) {
      programmatic.current = false;
      return;
    }
    const atBottom = el.scrollTop + el.clientHeight >= el.scrollHeight - ROW;
    if (follow && !atBottom) setFollow(false);
    else if (!follow && atBottom && lines.length > 0) setFollow(true);
  };

  const onKey = (e: KeyboardEvent): void => {
    const el = ref.current;
    if (!el) return;
    if (e.key === 'End') {
      e.preventDefault();
      setFollow(true);
    } else if (e.key === 'Home') {
      e.preventDefault();
      setFollow(false);
      el.scrollTop = 0;
    }
  };

  const overscan = 10;
  const first = Math.max(0, Math.floor(scrollTop / ROW) - overscan);
  const last = Math.min(lines.length, Math.ceil((scrollTop + height) / ROW) + overscan);
  const rows: JSX.Element[] = [];
  for (let i = first; i < last; i++) {
    const l = lines[i]!;
    rows.push(
      <div key={l.seq} class={`log-row log-${l.stream}`} style={{ top: `${i * ROW}px` }}>
        {showTime && (
          <span class="log-time" title={l.time ?? undefined}>
            {formatTime(l.time)}
          </span>
        )}
        {l.stream === 'stderr' && <span class="sr-only">stderr: </span>}
        <span class="log-text">
          <Highlight text={l.text} needle={needle} />
        </span>
      </div>,
    );
  }

  return (
    <div class="log-viewport-wrap">
      <div ref={ref} class="log-viewport" tabIndex={0} role="log" aria-label="Log output" aria-live="off" onScroll={onScroll} onKeyDown={onKey}>
        {lines.length === 0 ? (
          <div class="log-empty muted">{empty}</div>
        ) : (
          <div class="log-spacer" style={{ height: `${lines.length * ROW}px` }}>
            {rows}
          </div>
        )}
      </div>
      {!follow && lines.length > 0 && (
        <button type="button" class={buttonClass('primary', true, 'jump-latest')} onClick={() => setFollow(true)}>
          Jump to latest
        </button>
      )}
    </div>
  );
}
