/** A shell in a container. The xterm.js part is a lazily loaded chunk (see ../term/).
 * Keys go to the shell, Tab and Escape included; Escape followed by Tab (or Shift+Tab) moves
 * focus out of the terminal instead (WCAG 2.1.2, no keyboard trap), as the hint under it says. */
import type { JSX } from 'preact';
import { useEffect, useRef, useState } from 'preact/hooks';
import { Empty, ErrorState, Spinner, buttonClass } from '../components/ui.tsx';
import { apiNodePath } from '../lib/api.ts';
import { fleet } from '../lib/live.ts';
import { policyAllows, policyRefusal } from '../lib/policy.ts';
import { USE_CONNECT, signedIntentOf } from '../lib/signing.ts';
import { useStore } from '../lib/store.ts';
import type { TermSession, TermState } from '../term/xterm-session.ts';

const COMMANDS = ['/bin/sh', '/bin/bash', '/bin/ash', '/bin/zsh'];

export function TerminalView({ node, id, name, running, canWrite }: { node: string; id: string; name: string; running: boolean; canWrite: boolean }): JSX.Element {
  const host = useRef<HTMLDivElement>(null);
  const session = useRef<TermSession | null>(null);
  const [cmd, setCmd] = useState('/bin/sh');
  const [state, setState] = useState<TermState | { state: 'loading' } | { state: 'idle' }>({ state: 'idle' });
  const [loadError, setLoadError] = useState<string | null>(null);
  const [attempt, setAttempt] = useState(0);
  const nodeView = useStore(fleet).nodes?.find((n) => n.name === node);
  // A terminal's stdin would have to be sealed frame by frame: the UI leaves that to `dockfleet connect`.
  const signedHost = signedIntentOf(nodeView) !== null;
  const execAllowed = policyAllows(nodeView, 'exec') && !signedHost;
  /** Set by Escape: the next Tab leaves the terminal instead of reaching the shell. */
  const escaped = useRef(false);

  useEffect(() => {
    if (!running || !canWrite || !execAllowed || attempt === 0) return;
    let cancelled = false;
    setState({ state: 'loading' });
    setLoadError(null);
    import('../term/xterm-session.ts').then(
      (mod) => {
        if (cancelled || !host.current) return;
        host.current.textContent = '';
        const proto = window.location.protocol === 'https:' ? 'wss:' : 'ws:';
        session.current = mod.startTerminal(host.current, {
          url: (cols, rows) => `${proto}//${window.location.host}${apiNodePath(node, `/containers/${encodeURIComponent(id)}/terminal`)}?cols=${cols}&rows=${rows}&cmd=${encodeURIComponent(cmd)}`,
          onState: (s) => {
            if (!cancelled) setState(s);
          },
        });
      },
      (err: unknown) => {
        if (!cancelled) setLoadError(`The terminal could not be loaded: ${err instanceof Error ? err.message : String(err)}`);
      },
    );
    return () => {
      cancelled = true;
      session.current?.dispose();
      session.current = null;
    };
  }, [node, id, running, canWrite, execAllowed, attempt]);

  // Connect at once when the tab opens on a running container.
  useEffect(() => {
    if (running && canWrite && execAllowed) setAttempt((a) => (a === 0 ? 1 : a));
  }, [running, canWrite, execAllowed]);

  // Capture phase, so it runs before xterm.js sees the key: Escape still reaches the shell (vi
  // needs it), and arms the way out; a Tab right after it is kept from xterm.js, so the browser
  // moves focus on as it does anywhere else.
  const onKeyDownCapture = (e: KeyboardEvent): void => {
    if (e.key === 'Shift' || e.key === 'Control' || e.key === 'Alt' || e.key === 'Meta') return;
    if (e.key === 'Tab' && escaped.current && !e.ctrlKey && !e.altKey && !e.metaKey) {
      escaped.current = false;
      e.stopPropagation();
      return;
    }
    escaped.current = e.key === 'Escape';
  };

  if (!canWrite) return <Empty title="Terminals need the operator or admin role on this node">With the viewer role here you may read logs and inspect containers, not run commands in them.</Empty>;
  if (signedHost)
    return (
      <Empty title="Terminals on this host are not signed by the web UI">
        {USE_CONNECT} (<code>dockfleet connect {node} --socket PATH</code>, then <code>docker exec -it</code>)
      </Empty>
    );
  if (!execAllowed) return <Empty title="This host's policy does not allow terminals">{policyRefusal(nodeView, 'exec')}</Empty>;
  if (!running) return <Empty title={`${name} is not running`}>Start the container to open a terminal in it.</Empty>;

  const connected = state.state === 'open';
  const busy = state.state === 'loading' || state.state === 'connecting';
  const closed = state.state === 'closed' ? state : null;

  return (
    <section class="terminal" aria-label={`Terminal in ${name}`}>
      <form
        class="toolbar"
        onSubmit={(e) => {
          e.preventDefault();
          setAttempt((a) => a + 1);
        }}
      >
        <div class="field field-inline">
          <label for="term-cmd">Command</label>
          <input id="term-cmd" list="term-cmds" value={cmd} onInput={(e) => setCmd(e.currentTarget.value)} spellcheck={false} autocomplete="off" size={14} />
          <datalist id="term-cmds">
            {COMMANDS.map((c) => (
              <option key={c} value={c} />
            ))}
          </datalist>
        </div>
        <button type="submit" class={buttonClass(connected ? 'default' : 'primary', true)} disabled={busy}>
          {connected ? 'Reconnect' : 'Connect'}
        </button>
        {connected && (
          <button
            type="button"
            class={buttonClass('ghost', true)}
            onClick={() => {
              session.current?.dispose();
              session.current = null;
              setState({ state: 'closed', code: 1000, reason: 'disconnected', clean: true, opened: true });
            }}
          >
            Disconnect
          </button>
        )}
        <span class="term-status" role="status">
          {busy && (
            <>
              <Spinner /> {state.state === 'loading' ? 'Loading terminal…' : 'Connecting…'}
            </>
          )}
          {connected && (
            <>
              <span class="dot dot-live" aria-hidden="true" /> Connected: {cmd}
            </>
          )}
          {closed && (
            <span class={closed.opened && closed.code === 1000 ? 'muted' : 'bad-text'}>
              {closed.opened ? 'Session ended' : 'Could not connect'}
              {closed.reason && !/^session ended$/i.test(closed.reason) ? `: ${closed.reason}` : ''}
              {!closed.reason && closed.code !== 1000 && closed.code !== 1005 ? ` (code ${closed.code})` : ''}
            </span>
          )}
        </span>
      </form>
      {loadError && <ErrorState error={loadError} onRetry={() => setAttempt((a) => a + 1)} />}
      <div class="term-host" ref={host} onClick={() => session.current?.focus()} onKeyDownCapture={onKeyDownCapture} />
      <p class="muted small term-hint" id="term-hint">
        Keys go to the container while the terminal has focus, Tab and Esc included. To leave it, press <kbd>Esc</kbd> then <kbd>Tab</kbd> (or <kbd>Shift</kbd>+<kbd>Tab</kbd>), or click outside it.
      </p>
    </section>
  );
}
