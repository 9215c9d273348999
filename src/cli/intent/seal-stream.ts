/**
 * The signer's half of a sealed stream (src/protocol/intent-stream.ts): a Transform that turns
 * body bytes into 'D' data frames and 'S' seals. Each seal signs the running SHA-256 of every
 * byte so far (a copy of the running hash, so nothing is hashed twice), its index, the total and
 * whether it is the last, under the intent's nonce.
 *
 * When to seal: whenever MAX_SEGMENT bytes are unsealed (the host holds no more), whenever the
 * source goes quiet — a whole turn of the event loop passes with nothing new, so a keystroke on
 * an exec's stdin reaches the container at once while a bulk upload is sealed per MiB — and a
 * final seal at the end.
 */
import { createHash, type Hash } from 'node:crypto';
import { Transform, type TransformCallback } from 'node:stream';
import { FRAME_DATA, FRAME_HEAD_BYTES, FRAME_SEAL, MAX_SEGMENT, SEAL_BODY_BYTES, sealBody, sealSigningBytes } from '../../protocol/intent-stream.ts';

/** Anything that signs bytes with the intent's key (IntentSigner does). */
export interface BytesSigner {
  signBytes(data: Uint8Array): Uint8Array;
}

export class SealStream extends Transform {
  readonly #signer: BytesSigner;
  readonly #nonce: string;
  readonly #hash: Hash = createHash('sha256');
  #index = 0n;
  #total = 0n;
  /** Bytes sent in data frames since the last seal. */
  #unsealed = 0;
  /** Whether bytes came in since the idle check last looked. */
  #fresh = false;
  #idleCheck: NodeJS.Immediate | null = null;
  /** How many seals went out (for benchmarks and tests). */
  seals = 0;

  constructor(signer: BytesSigner, nonce: string) {
    super();
    this.#signer = signer;
    this.#nonce = nonce;
  }

  override _transform(chunk: Buffer, _encoding: BufferEncoding, callback: TransformCallback): void {
    for (const frame of this.#frames(chunk)) this.push(frame);
    if (this.#unsealed > 0) this.#watchIdle();
    callback();
  }

  /**
   * Frames `bytes` at once and seals them (not final), for a body that must end at a seal
   * before the rest of the stream follows: a hijacked call's JSON body, whose stdin continues
   * the same stream. Returns the frames to send; this stream goes on from there.
   */
  sealedPrefix(bytes: Buffer): Buffer {
    if (bytes.length === 0) return Buffer.alloc(0);
    const frames = this.#frames(bytes);
    if (this.#unsealed > 0) frames.push(this.#seal(false));
    return Buffer.concat(frames);
  }

  /** Data frames for `chunk`, with a seal wherever MAX_SEGMENT bytes are unsealed. */
  #frames(chunk: Buffer): Buffer[] {
    const frames: Buffer[] = [];
    let offset = 0;
    while (offset < chunk.length) {
      const take = Math.min(chunk.length - offset, MAX_SEGMENT - this.#unsealed);
      this.#data(offset === 0 && take === chunk.length ? chunk : chunk.subarray(offset, offset + take), frames);
      offset += take;
      if (this.#unsealed === MAX_SEGMENT) frames.push(this.#seal(false));
    }
    return frames;
  }

  override _flush(callback: TransformCallback): void {
    this.#stopIdleCheck();
    this.push(this.#seal(true));
    callback();
  }

  override _destroy(error: Error | null, callback: (error?: Error | null) => void): void {
    this.#stopIdleCheck();
    callback(error);
  }

  /** A data frame as its 5-byte head and the bytes themselves: the body is never copied. */
  #data(part: Buffer, frames: Buffer[]): void {
    this.#hash.update(part);
    const head = Buffer.allocUnsafe(FRAME_HEAD_BYTES);
    head[0] = FRAME_DATA;
    head.writeUInt32BE(part.length, 1);
    frames.push(head, part);
    this.#unsealed += part.length;
    this.#total += BigInt(part.length);
    this.#fresh = true;
  }

  #seal(final: boolean): Buffer {
    const digest = this.#hash.copy().digest('hex');
    const signature = this.#signer.signBytes(sealSigningBytes(this.#nonce, this.#index, final, this.#total, digest));
    const frame = Buffer.allocUnsafe(FRAME_HEAD_BYTES + SEAL_BODY_BYTES);
    frame[0] = FRAME_SEAL;
    frame.writeUInt32BE(SEAL_BODY_BYTES, 1);
    frame.set(sealBody(this.#index, final, this.#total, signature), FRAME_HEAD_BYTES);
    this.#index += 1n;
    this.#unsealed = 0;
    this.seals += 1;
    return frame;
  }

  /**
   * Seals what is pending once a whole turn of the event loop has brought no new bytes: the
   * first check after a chunk always looks again, so a source that delivers on every turn (a
   * bulk upload) is sealed per MiB, and one that has gone quiet (a keystroke) within two turns.
   * While bytes wait in the writable buffer a later _transform call looks again.
   */
  #watchIdle(): void {
    if (this.#idleCheck) return;
    this.#idleCheck = setImmediate(() => {
      this.#idleCheck = null;
      if (this.destroyed || this.writableEnded || this.#unsealed === 0 || this.writableLength > 0) return;
      if (this.#fresh) {
        this.#fresh = false;
        return void this.#watchIdle();
      }
      this.push(this.#seal(false));
    });
  }

  #stopIdleCheck(): void {
    if (this.#idleCheck) clearImmediate(this.#idleCheck);
    this.#idleCheck = null;
  }
}
