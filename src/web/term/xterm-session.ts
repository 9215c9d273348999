/**
 * The terminal itself: xterm.js + fit addon over the hub's terminal WebSocket. Loaded on demand
 * (dynamic import) so xterm.js stays out of the first load.
 *
 * Protocol: server → browser messages (binary or text) are terminal output; keystrokes go as
 * binary messages; a resize is a text message {"type":"resize","cols":C,"rows":R}. The server
 * closes with a reason on error.
 */
import { FitAddon } from '@xterm/addon-fit';
import { Terminal } from '@xterm/xterm';
// xterm's stylesheet comes with the first load (main.tsx): esbuild's CSS for a lazy chunk is never linked.

export type TermState = { state: 'connecting' } | { state: 'open' } | { state: 'closed'; code: number; reason: string; clean: boolean; opened: boolean };

export interface TermSession {
  focus(): void;
  dispose(): void;
}

export interface TermOptions {
  /** The WebSocket URL for a terminal of this size. */
  url: (cols: number, rows: number) => string;
  onState: (s: TermState) => void;
}

const THEME = {
  background: '#0f1419',
  foreground: '#d8dee9',
  cursor: '#e5e9f0',
  selectionBackground: '#3b4a5e',
  black: '#1b2129',
  red: '#f2777a',
  green: '#99cc99',
  yellow: '#ffcc66',
  blue: '#6699cc',
  magenta: '#cc99cc',
  cyan: '#66cccc',
  white: '#d8dee9',
  brightBlack: '#5c6773',
  brightRed: '#ff8f8f',
  brightGreen: '#b5e0b5',
  brightYellow: '#ffe08a',
  brightBlue: '#8fb8e6',
  brightMagenta: '#e0b5e0',
  brightCyan: '#8fe0e0',
  brightWhite: '#ffffff',
};

export function startTerminal(el: HTMLElement, opts: TermOptions): TermSession {
  const term = new Terminal({
    cursorBlink: true,
    fontFamily: 'ui-monospace, SFMono-Regular, "SF Mono", Menlo, Consolas, "Liberation Mono", "DejaVu Sans Mono", monospace',
    fontSize: 13,
    scrollback: 5000,
    theme: THEME,
    allowProposedApi: false,
  });
  const fit = new FitAddon();
  term.loadAddon(fit);
  term.open(el);
  try {
    fit.fit();
  } catch {
    /* not laid out yet */
  }

  const encoder = new TextEncoder();
  let opened = false;
  let disposed = false;
  opts.onState({ state: 'connecting' });
  const ws = new WebSocket(opts.url(term.cols, term.rows));
  ws.binaryType = 'arraybuffer';

  ws.addEventListener('open', () => {
    opened = true;
    opts.onState({ state: 'open' });
    // The size may have changed while connecting.
    ws.send(JSON.stringify({ type: 'resize', cols: term.cols, rows: term.rows }));
    term.focus();
  });
  ws.addEventListener('message', (e: MessageEvent<ArrayBuffer | string>) => {
    if (typeof e.data === 'string') term.write(e.data);
    else term.write(new Uint8Array(e.data));
  });
  ws.addEventListener('close', (e) => {
    if (disposed) return;
    const reason = e.reason || (opened ? '' : 'the hub refused the terminal or could not be reached');
    const extra = reason && !/^session ended$/i.test(reason) ? `: ${reason}` : '';
    term.write(`\r\n\x1b[2m[${opened ? 'session ended' : 'could not connect'}${extra}]\x1b[0m\r\n`);
    opts.onState({ state: 'closed', code: e.code, reason, clean: e.wasClean, opened });
  });

  const send = (data: string | Uint8Array<ArrayBuffer>): void => {
    if (ws.readyState === WebSocket.OPEN) ws.send(data);
  };
  const dataSub = term.onData((d) => send(encoder.encode(d)));
  const binSub = term.onBinary((d) => {
    const bytes = new Uint8Array(d.length);
    for (let i = 0; i < d.length; i++) bytes[i] = d.charCodeAt(i) & 0xff;
    send(bytes);
  });
  const resizeSub = term.onResize(({ cols, rows }) => send(JSON.stringify({ type: 'resize', cols, rows })));

  let fitTimer: ReturnType<typeof setTimeout> | null = null;
  const ro = new ResizeObserver(() => {
    if (fitTimer) clearTimeout(fitTimer);
    fitTimer = setTimeout(() => {
      try {
        fit.fit();
      } catch {
        /* hidden */
      }
    }, 60);
  });
  ro.observe(el);

  return {
    focus: () => term.focus(),
    dispose() {
      disposed = true;
      ro.disconnect();
      if (fitTimer) clearTimeout(fitTimer);
      dataSub.dispose();
      binSub.dispose();
      resizeSub.dispose();
      if (ws.readyState === WebSocket.OPEN || ws.readyState === WebSocket.CONNECTING) ws.close(1000, 'closed by user');
      term.dispose();
    },
  };
}
