/** Reads a stream whole, up to `limit` bytes. Returns null (and stops reading) past the limit:
 * a peer cannot make us buffer more than we chose. */
export async function readBounded(stream: AsyncIterable<Buffer>, limit: number): Promise<Buffer | null> {
  const chunks: Buffer[] = [];
  let size = 0;
  for await (const chunk of stream) {
    size += chunk.length;
    if (size > limit) return null;
    chunks.push(chunk);
  }
  return Buffer.concat(chunks, size);
}
