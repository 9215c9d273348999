/** `Content-Disposition: attachment` for any filename Linux allows (RFC 6266 / RFC 8187):
 * a printable-ASCII fallback plus the exact name, UTF-8 percent-encoded. */
export function attachmentDisposition(name: string): string {
  const fallback = name.replace(/[^\x20-\x7e]|["\\]/g, '_');
  const exact = encodeURIComponent(name).replace(/['()*]/g, (c) => `%${c.charCodeAt(0).toString(16).toUpperCase()}`);
  return `attachment; filename="${fallback}"; filename*=UTF-8''${exact}`;
}
