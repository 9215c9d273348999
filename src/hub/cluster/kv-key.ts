/**
 * KV keys from ids. NATS keys allow only `A-Z a-z 0-9 - _ = / .`, and dots split tokens; an id
 * made of `A-Z a-z 0-9 - _` is its own key, anything else becomes `b64.` + base64url of it (a
 * plain key has no dot, so the two forms never collide).
 */
const PLAIN = /^[A-Za-z0-9_-]{1,200}$/;

export function kvKey(id: string): string {
  return PLAIN.test(id) ? id : `b64.${Buffer.from(id, 'utf8').toString('base64url')}`;
}

export function idFromKvKey(key: string): string {
  return key.startsWith('b64.') ? Buffer.from(key.slice(4), 'base64url').toString('utf8') : key;
}
