/**
 * A Compose editor: a plain textarea with a line-number gutter that scrolls with it, problems
 * marked on their lines and listed below (each a button that moves the caret to its line).
 * No editor library: the first-load budget is small, and a textarea is accessible as it is.
 */
import type { JSX } from 'preact';
import { useEffect, useRef, useState } from 'preact/hooks';
import type { ComposeIssue } from '../lib/types.ts';

export interface ComposeEditorProps {
  id: string;
  value: string;
  onInput: (text: string) => void;
  issues: ComposeIssue[];
  /** Where the issues come from, shown above the list ("Checked as you type", "The hub refused …"). */
  issuesTitle: string;
  checking: boolean;
  readOnly?: boolean;
  describedBy?: string;
}

export function ComposeEditor({ id, value, onInput, issues, issuesTitle, checking, readOnly, describedBy }: ComposeEditorProps): JSX.Element {
  const area = useRef<HTMLTextAreaElement>(null);
  const gutter = useRef<HTMLDivElement>(null);
  const [scrollTop, setScrollTop] = useState(0);
  const lines = Math.max(1, value.split('\n').length);
  const bad = new Map<number, string>();
  for (const i of issues) if (i.line !== null && !bad.has(i.line)) bad.set(i.line, i.message);

  useEffect(() => {
    if (gutter.current) gutter.current.scrollTop = scrollTop;
  }, [scrollTop, lines]);

  const goTo = (line: number): void => {
    const ta = area.current;
    if (!ta) return;
    const rows = ta.value.split('\n');
    let pos = 0;
    for (let i = 0; i < line - 1 && i < rows.length; i++) pos += rows[i]!.length + 1;
    ta.focus();
    ta.setSelectionRange(pos, pos + (rows[line - 1]?.length ?? 0));
    const lh = parseFloat(getComputedStyle(ta).lineHeight) || 20;
    ta.scrollTop = Math.max(0, (line - 3) * lh);
  };

  const onKeyDown = (e: KeyboardEvent): void => {
    // Tab indents by two spaces (YAML has no tabs); Escape then Tab leaves the field as usual.
    if (e.key !== 'Tab' || e.shiftKey || e.ctrlKey || e.metaKey || e.altKey || readOnly) return;
    const ta = e.currentTarget as HTMLTextAreaElement;
    if (ta.dataset.tabOut === '1') return;
    e.preventDefault();
    const { selectionStart: s, selectionEnd: t } = ta;
    ta.setRangeText('  ', s, t, 'end');
    onInput(ta.value);
  };

  const issuesId = `${id}-issues`;
  return (
    <div class="compose-editor">
      <div class="compose-frame">
        <div class="compose-gutter" ref={gutter} aria-hidden="true">
          {Array.from({ length: lines }, (_, i) => (
            <div key={i} class={bad.has(i + 1) ? 'gutter-line bad' : 'gutter-line'} title={bad.get(i + 1)}>
              {bad.has(i + 1) ? '!' : ''}
              {i + 1}
            </div>
          ))}
        </div>
        <textarea
          id={id}
          ref={area}
          class="compose-text mono"
          value={value}
          spellcheck={false}
          autocomplete="off"
          autocapitalize="none"
          wrap="off"
          readOnly={readOnly}
          aria-invalid={issues.length > 0 ? 'true' : undefined}
          aria-describedby={[describedBy, issuesId].filter(Boolean).join(' ')}
          onInput={(e) => onInput(e.currentTarget.value)}
          onScroll={(e) => setScrollTop(e.currentTarget.scrollTop)}
          onKeyDown={onKeyDown}
          onKeyUp={(e) => {
            if (e.key === 'Escape') e.currentTarget.dataset.tabOut = '1';
          }}
          onBlur={(e) => {
            delete e.currentTarget.dataset.tabOut;
          }}
        />
      </div>
      <div id={issuesId} class="compose-issues" aria-live="polite">
        {checking ? (
          <p class="muted small">Checking…</p>
        ) : issues.length === 0 ? (
          <p class="ok-text small">{issuesTitle}: no problems found.</p>
        ) : (
          <>
            <p class="bad-text small">
              <strong>{issuesTitle}:</strong> {issues.length === 1 ? '1 problem' : `${issues.length} problems`}
            </p>
            <ul class="issue-list">
              {issues.map((i, n) => (
                <li key={n}>
                  {i.line !== null ? (
                    <button type="button" class="btn btn-link btn-sm" onClick={() => goTo(i.line!)}>
                      Line {i.line}
                    </button>
                  ) : (
                    <span class="muted">—</span>
                  )}{' '}
                  {i.path && <code>{i.path}</code>} {i.message}
                </li>
              ))}
            </ul>
          </>
        )}
      </div>
      <p class="hint">Tab indents by two spaces; press Escape, then Tab, to leave the editor.</p>
    </div>
  );
}
