/**
 * The host's half of a sealed stream (src/protocol/intent-stream.ts): reads 'D' data frames and
 * 'S' seals, keeps its own running SHA-256 of every body byte, checks each seal (its index in
 * order, the total so far, the digest, and the Ed25519 signature by the intent's key under the
 * intent's nonce) and releases the bytes a seal covers only after it verified. So what reaches
 * the engine is always a prefix of what the signer sent. Anything else is an error that stops
 * the stream: an unknown frame, a data frame or unsealed run over MAX_SEGMENT, a bad seal, bytes
 * after the final seal, or an end without one.
 *
 * `Unsealer` is the synchronous core (a hijacked call unseals its JSON body with it before the
 * engine is asked); `UnsealStream` is the same as a Transform, for bodies and stdin.
 */
import { createHash, type Hash } from 'node:crypto';
import { Transform, type TransformCallback } from 'node:stream';
import { verifyBytes } from '../../lib/intent-keys.ts';
import { FRAME_DATA, FRAME_HEAD_BYTES, FRAME_SEAL, MAX_SEGMENT, SEAL_BODY_BYTES, readSeal, sealSigningBytes } from '../../protocol/intent-stream.ts';

export class UnsealError extends Error {
  override name = 'UnsealError';
}

export class Unsealer {
  readonly #key: string;
  readonly #nonce: string;
  readonly #hash: Hash = createHash('sha256');
  #index = 0n;
  #total = 0n;
  /** Verified-pending bytes: received in data frames, not yet covered by a seal. */
  #pending: Buffer[] = [];
  #pendingBytes = 0;
  /** The frame being read: its head (collected), then its remaining body. */
  #head = Buffer.alloc(FRAME_HEAD_BYTES);
  #headFill = 0;
  #type = 0;
  #remaining = 0;
  #seal: Buffer | null = null;
  #sealFill = 0;
  #final = false;
  #failed: UnsealError | null = null;

  constructor(key: string, nonce: string) {
    this.#key = key;
    this.#nonce = nonce;
  }

  /** Bytes released so far (every one covered by a verified seal). */
  get released(): bigint {
    return this.#total - BigInt(this.#pendingBytes);
  }

  /** Whether the stream stands at a seal (nothing unsealed, no frame half read). */
  get atSeal(): boolean {
    return this.#pendingBytes === 0 && this.#headFill === 0 && this.#remaining === 0 && this.#seal === null;
  }

  get finished(): boolean {
    return this.#final;
  }

  /** Takes framed bytes; returns the body bytes whose seals verified. Throws UnsealError. */
  push(chunk: Buffer): Buffer[] {
    if (this.#failed) throw this.#failed;
    try {
      return this.#push(chunk);
    } catch (err) {
      this.#failed = err instanceof UnsealError ? err : new UnsealError(String(err));
      this.#pending = [];
      throw this.#failed;
    }
  }

  /** The framed stream ended: throws unless its final seal came. */
  end(): void {
    if (this.#failed) throw this.#failed;
    if (!this.#final) {
      this.#failed = new UnsealError(`the sealed body ended without its final seal after ${this.#total} bytes (cut off)`);
      throw this.#failed;
    }
  }

  #push(chunk: Buffer): Buffer[] {
    const out: Buffer[] = [];
    let off = 0;
    while (off < chunk.length) {
      if (this.#final) throw new UnsealError('bytes arrived after the final seal (the sealed body was extended)');
      if (this.#remaining === 0 && this.#seal === null) {
        const take = Math.min(FRAME_HEAD_BYTES - this.#headFill, chunk.length - off);
        chunk.copy(this.#head, this.#headFill, off, off + take);
        this.#headFill += take;
        off += take;
        if (this.#headFill < FRAME_HEAD_BYTES) break;
        this.#headFill = 0;
        this.#startFrame(this.#head[0]!, this.#head.readUInt32BE(1));
        if (this.#type === FRAME_SEAL && this.#remaining === 0) throw new UnsealError('an empty seal frame');
        continue;
      }
      const take = Math.min(this.#remaining, chunk.length - off);
      const part = chunk.subarray(off, off + take);
      off += take;
      this.#remaining -= take;
      if (this.#type === FRAME_DATA) {
        this.#hash.update(part);
        this.#pending.push(part);
        this.#pendingBytes += take;
        this.#total += BigInt(take);
        if (this.#pendingBytes > MAX_SEGMENT) throw new UnsealError(`more than ${MAX_SEGMENT} bytes arrived without a seal`);
      } else {
        part.copy(this.#seal!, this.#sealFill);
        this.#sealFill += take;
        if (this.#remaining === 0) out.push(...this.#checkSeal());
      }
    }
    return out;
  }

  #startFrame(type: number, length: number): void {
    if (type === FRAME_DATA) {
      if (length > MAX_SEGMENT) throw new UnsealError(`a data frame of ${length} bytes is over the ${MAX_SEGMENT}-byte limit`);
      this.#type = type;
      this.#remaining = length;
      return;
    }
    if (type === FRAME_SEAL) {
      if (length !== SEAL_BODY_BYTES) throw new UnsealError(`a seal frame of ${length} bytes (a seal is ${SEAL_BODY_BYTES})`);
      this.#type = type;
      this.#remaining = length;
      this.#seal = Buffer.alloc(SEAL_BODY_BYTES);
      this.#sealFill = 0;
      return;
    }
    throw new UnsealError(`an unknown frame type 0x${type.toString(16).padStart(2, '0')} in the sealed body`);
  }

  #checkSeal(): Buffer[] {
    const seal = readSeal(this.#seal!);
    this.#seal = null;
    if (!seal) throw new UnsealError('a malformed seal');
    if (seal.index !== this.#index) throw new UnsealError(`seal ${seal.index} arrived where seal ${this.#index} was due (dropped, repeated or reordered)`);
    if (seal.total !== this.#total) throw new UnsealError(`seal ${seal.index} covers ${seal.total} bytes, and ${this.#total} arrived`);
    const digest = this.#hash.copy().digest('hex');
    if (!verifyBytes(this.#key, sealSigningBytes(this.#nonce, seal.index, seal.final, seal.total, digest), seal.signature)) {
      throw new UnsealError(`seal ${seal.index} does not verify: the bytes before it are not the ones signed`);
    }
    this.#index += 1n;
    this.#final = seal.final;
    const released = this.#pending;
    this.#pending = [];
    this.#pendingBytes = 0;
    return released;
  }
}

/** An Unsealer as a Transform: framed bytes in, verified body bytes out. */
export class UnsealStream extends Transform {
  readonly unsealer: Unsealer;

  constructor(unsealer: Unsealer) {
    super();
    this.unsealer = unsealer;
  }

  override _transform(chunk: Buffer, _encoding: BufferEncoding, callback: TransformCallback): void {
    try {
      for (const part of this.unsealer.push(chunk)) this.push(part);
      callback();
    } catch (err) {
      callback(err as Error);
    }
  }

  override _flush(callback: TransformCallback): void {
    try {
      this.unsealer.end();
      callback();
    } catch (err) {
      callback(err as Error);
    }
  }
}
