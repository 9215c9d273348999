/**
 * What a receiver is sent, per format: the generic JSON POST (schema `dockfleet.alert.v1`,
 * documented in the README), ntfy's publish format (a text body with Title, Priority and Tags
 * headers), and the Slack-compatible `{text, blocks}` that Slack, Mattermost and Rocket.Chat
 * incoming webhooks accept. Pure functions: the worker adds the receiver's own headers.
 */
import type { AlertEvent, IncidentRecord, ReceiverFormat } from '../../store/alert-store.ts';

export type MessageEvent = AlertEvent | 'test';

export interface OutgoingMessage {
  headers: Record<string, string>;
  body: string;
}

export const JSON_SCHEMA_ID = 'dockfleet.alert.v1';

const iso = (ms: number | null): string | null => (ms === null ? null : new Date(ms).toISOString());

function headline(event: MessageEvent, i: IncidentRecord): string {
  if (event === 'test') return `[test] ${i.title}`;
  return event === 'resolved' ? `Resolved: ${i.title}` : i.title;
}

/** ntfy reads non-ASCII header values as RFC 2047 encoded words. */
function headerText(value: string): string {
  return /^[\x20-\x7e]*$/.test(value) ? value : `=?UTF-8?B?${Buffer.from(value, 'utf8').toString('base64')}?=`;
}

export function formatMessage(format: ReceiverFormat, event: MessageEvent, i: IncidentRecord, hubUrl: string | null): OutgoingMessage {
  const title = headline(event, i);
  if (format === 'ntfy') {
    const priority = event === 'resolved' || event === 'test' ? '2' : i.severity === 'critical' ? '5' : '4';
    const tags = event === 'resolved' ? 'white_check_mark' : event === 'test' ? 'test_tube' : i.severity === 'critical' ? 'rotating_light' : 'warning';
    return {
      headers: { 'content-type': 'text/plain; charset=utf-8', title: headerText(title), priority, tags: `${tags},dockfleet,${i.kind}` },
      body: i.detail,
    };
  }
  if (format === 'slack') {
    const mark = event === 'resolved' ? ':white_check_mark:' : i.severity === 'critical' ? ':rotating_light:' : ':warning:';
    const text = `${mark} ${title}`;
    const context = [`*${i.kind}*`, i.node ? `node \`${i.node}\`` : null, `opened ${iso(i.openedAt)}`, i.resolvedAt ? `resolved ${iso(i.resolvedAt)}` : null].filter(Boolean).join(' · ');
    return {
      headers: { 'content-type': 'application/json' },
      body: JSON.stringify({
        text,
        blocks: [
          { type: 'section', text: { type: 'mrkdwn', text: `${text}\n${i.detail}` } },
          { type: 'context', elements: [{ type: 'mrkdwn', text: context }] },
        ],
      }),
    };
  }
  return {
    headers: { 'content-type': 'application/json' },
    body: JSON.stringify({
      schema: JSON_SCHEMA_ID,
      event,
      incident: {
        id: i.id,
        key: i.key,
        kind: i.kind,
        severity: i.severity,
        state: i.state,
        node: i.node,
        subject: i.subject,
        title: i.title,
        detail: i.detail,
        openedAt: iso(i.openedAt),
        updatedAt: iso(i.updatedAt),
        resolvedAt: iso(i.resolvedAt),
      },
      hub: hubUrl,
      sentAt: new Date().toISOString(),
    }),
  };
}
