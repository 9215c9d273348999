// Unit tests for the logs stream parser (pure, no DOM).
// Run: node --import tsx --test src/web/lib/docker-stream.test.ts
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { BoundedLines, DockerDemuxer, LineSplitter, LogDecoder, demuxAll, encodeFrame, linesToText, parseFrameHeader, splitTimestamp, stripAnsi, type LogLine } from '../src/web/lib/docker-stream.ts';

const enc = new TextEncoder();
const dec = new TextDecoder();

function concat(...parts: Uint8Array[]): Uint8Array {
  const out = new Uint8Array(parts.reduce((n, p) => n + p.length, 0));
  let at = 0;
  for (const p of parts) {
    out.set(p, at);
    at += p.length;
  }
  return out;
}

/** Joins demuxer output back into per-stream text. */
function collect(frames: Array<{ stream: string; data: Uint8Array }>): Record<string, string> {
  const out: Record<string, string> = {};
  for (const f of frames) out[f.stream] = (out[f.stream] ?? '') + dec.decode(f.data);
  return out;
}

test('parseFrameHeader reads stream and big-endian size', () => {
  const h = new Uint8Array([2, 0, 0, 0, 0x01, 0x02, 0x03, 0x04]);
  assert.deepEqual(parseFrameHeader(h), { stream: 'stderr', size: 0x01020304 });
  assert.deepEqual(parseFrameHeader(new Uint8Array([1, 0, 0, 0, 0xff, 0xff, 0xff, 0xff])), { stream: 'stdout', size: 0xffffffff });
  assert.equal(parseFrameHeader(new Uint8Array([1, 0, 0])), null, 'short');
  assert.equal(parseFrameHeader(new Uint8Array([7, 0, 0, 0, 0, 0, 0, 1])), null, 'unknown stream');
  assert.equal(parseFrameHeader(new Uint8Array([1, 1, 0, 0, 0, 0, 0, 1])), null, 'nonzero padding');
});

test('demuxAll splits a whole body', () => {
  const body = concat(encodeFrame(1, 'out\n'), encodeFrame(2, 'err\n'), encodeFrame(1, ''));
  const frames = demuxAll(body);
  assert.equal(frames.length, 3);
  assert.deepEqual(collect(frames), { stdout: 'out\n', stderr: 'err\n' });
  assert.throws(() => demuxAll(body.subarray(0, body.length - 3)), /truncated/);
});

test('DockerDemuxer handles frames split at every byte boundary', () => {
  const body = concat(encodeFrame(1, 'hello\n'), encodeFrame(2, 'oops\n'), encodeFrame(1, 'world\n'));
  for (let cut = 0; cut <= body.length; cut++) {
    const d = new DockerDemuxer();
    const frames = [...d.push(body.subarray(0, cut)), ...d.push(body.subarray(cut))];
    assert.deepEqual(collect(frames), { stdout: 'hello\nworld\n', stderr: 'oops\n' }, `cut at ${cut}`);
    assert.equal(d.pendingBytes, 0);
  }
});

test('DockerDemuxer handles one byte at a time and many frames per chunk', () => {
  const body = concat(...Array.from({ length: 50 }, (_, i) => encodeFrame(i % 3 === 0 ? 2 : 1, `line ${i}\n`)));
  const d = new DockerDemuxer();
  const frames = [];
  for (let i = 0; i < body.length; i++) frames.push(...d.push(body.subarray(i, i + 1)));
  const whole = collect(demuxAll(body));
  assert.deepEqual(collect(frames), whole);
  assert.deepEqual(collect(new DockerDemuxer().push(body)), whole);
});

test('DockerDemuxer reports a frame still in flight', () => {
  const d = new DockerDemuxer();
  d.push(encodeFrame(1, 'abcdef').subarray(0, 10));
  assert.equal(d.pendingBytes, 4);
});

test('DockerDemuxer falls back to raw text when the body is not multiplexed', () => {
  const d = new DockerDemuxer();
  const frames = [...d.push(enc.encode('plain tty ')), ...d.push(enc.encode('output\n'))];
  assert.equal(d.passthrough, true);
  assert.deepEqual(collect(frames), { stdout: 'plain tty output\n' });
});

test('LineSplitter keeps partial lines and strips CR', () => {
  const s = new LineSplitter();
  assert.deepEqual(s.push('a\r\nb'), ['a']);
  assert.deepEqual(s.push('c\n\nd'), ['bc', '']);
  assert.equal(s.pending, 'd');
  assert.equal(s.flush(), 'd');
  assert.equal(s.flush(), null);
});

test('splitTimestamp and stripAnsi', () => {
  assert.deepEqual(splitTimestamp('2024-05-01T10:11:12.123456789Z hello world'), { time: '2024-05-01T10:11:12.123456789Z', text: 'hello world' });
  assert.deepEqual(splitTimestamp('2024-05-01T10:11:12+02:00 x'), { time: '2024-05-01T10:11:12+02:00', text: 'x' });
  assert.deepEqual(splitTimestamp('no stamp here'), { time: null, text: 'no stamp here' });
  assert.equal(stripAnsi('\x1b[32mgreen\x1b[0m and \x1b]0;title\x07plain\x07'), 'green and plain');
  assert.equal(stripAnsi('tab\tstays'), 'tab\tstays');
});

test('LogDecoder: multiplexed body with timestamps, split UTF-8 and interleaved streams', () => {
  const euro = enc.encode('€'); // 3 bytes, split across two frames below
  const body = concat(
    encodeFrame(1, '2024-01-01T00:00:00.000000001Z price: '),
    encodeFrame(1, euro.subarray(0, 1)),
    encodeFrame(2, '2024-01-01T00:00:00.5Z warn\n'),
    encodeFrame(1, concat(euro.subarray(1), enc.encode('5\n2024-01-01T00:00:01Z no newline'))),
  );
  for (let cut = 0; cut <= body.length; cut += 3) {
    const d = new LogDecoder({ tty: false, timestamps: true });
    const lines = [...d.push(body.subarray(0, cut)), ...d.push(body.subarray(cut)), ...d.end()];
    assert.deepEqual(
      lines.map((l) => [l.stream, l.time, l.text]),
      [
        ['stderr', '2024-01-01T00:00:00.5Z', 'warn'],
        ['stdout', '2024-01-01T00:00:00.000000001Z', 'price: €5'],
        ['stdout', '2024-01-01T00:00:01Z', 'no newline'],
      ],
      `cut at ${cut}`,
    );
    assert.deepEqual(
      lines.map((l) => l.seq),
      [0, 1, 2],
    );
  }
});

test('LogDecoder: TTY body is raw text', () => {
  const d = new LogDecoder({ tty: true, timestamps: true });
  const lines = [...d.push(enc.encode('2024-01-01T00:00:00Z \x1b[1mbold\x1b[0m\r\n2024-01-01T00:00:01Z next\r\n'))];
  assert.deepEqual(
    lines.map((l) => [l.stream, l.time, l.text]),
    [
      ['stdout', '2024-01-01T00:00:00Z', 'bold'],
      ['stdout', '2024-01-01T00:00:01Z', 'next'],
    ],
  );
});

test('BoundedLines keeps only the newest lines', () => {
  const b = new BoundedLines<number>(100);
  for (let i = 0; i < 1000; i++) b.push([i]);
  assert.equal(b.length, 100);
  assert.equal(b.lines.length, 100);
  assert.equal(b.lines[0], 900);
  assert.equal(b.lines[99], 999);
  assert.equal(b.dropped, 900);
  b.push(Array.from({ length: 250 }, (_, i) => 2000 + i));
  assert.equal(b.lines[0], 2150);
  assert.equal(b.dropped, 1150);
  b.clear();
  assert.equal(b.length, 0);
  assert.equal(b.dropped, 0);
});

test('linesToText marks stderr', () => {
  const lines: LogLine[] = [
    { seq: 0, stream: 'stdout', time: 't1', text: 'a' },
    { seq: 1, stream: 'stderr', time: null, text: 'b' },
  ];
  assert.equal(linesToText(lines), 't1 a\n[stderr] b\n');
});
