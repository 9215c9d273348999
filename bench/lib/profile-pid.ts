/**
 * A CPU profile of a Node process that is already running, without restarting it: SIGUSR1 opens
 * its inspector on 127.0.0.1:9229 (the process's own --inspect-port, if it was given one), the
 * profiler runs over the DevTools protocol for a while, and the inspector is closed again, so
 * that the next process can be profiled on the same port. Commands reach the process's main
 * thread as interrupts, so a busy event loop is profiled too. Only for processes you started (a
 * bench's children).
 *
 *   node --import tsx bench/lib/profile-pid.ts PID SECONDS OUT.cpuprofile [--port=9229] [--interval-us=1000]
 *
 * Then: node --import tsx bench/lib/cpuprofile-summary.ts OUT.cpuprofile
 */
import { writeFile } from 'node:fs/promises';
import { setTimeout as sleep } from 'node:timers/promises';
import { parseArgs } from 'node:util';
import WebSocket from 'ws';

const { positionals, values } = parseArgs({
  allowPositionals: true,
  options: { port: { type: 'string', default: '9229' }, 'interval-us': { type: 'string', default: '1000' } },
});
const [pidText, secondsText, out] = positionals;
const pid = Number(pidText);
const seconds = Number(secondsText);
if (!Number.isInteger(pid) || !(seconds > 0) || !out) {
  process.stderr.write('usage: profile-pid.ts PID SECONDS OUT.cpuprofile [--port=9229] [--interval-us=1000]\n');
  process.exit(2);
}

process.kill(pid, 'SIGUSR1');
const list = `http://127.0.0.1:${values.port}/json/list`;
let target: string | null = null;
for (let i = 0; i < 100 && !target; i++) {
  await sleep(100);
  const targets =
    (await fetch(list)
      .then((r) => r.json() as Promise<Array<{ webSocketDebuggerUrl: string }>>)
      .catch(() => [])) ?? [];
  target = targets[0]?.webSocketDebuggerUrl ?? null;
}
if (!target) throw new Error(`no inspector answered on ${list} after SIGUSR1 to ${pid}`);

const ws = new WebSocket(target);
await new Promise((resolve, reject) => ws.once('open', resolve).once('error', reject));
let nextId = 1;
const pending = new Map<number, (result: unknown) => void>();
ws.on('message', (data) => {
  const msg = JSON.parse(String(data)) as { id?: number; result?: unknown; error?: { message: string } };
  if (msg.id === undefined) return;
  if (msg.error) throw new Error(msg.error.message);
  pending.get(msg.id)?.(msg.result);
  pending.delete(msg.id);
});
const call = <T>(method: string, params: Record<string, unknown> = {}): Promise<T> =>
  new Promise<T>((resolve) => {
    const id = nextId++;
    pending.set(id, resolve as (r: unknown) => void);
    ws.send(JSON.stringify({ id, method, params }));
  });

await call('Profiler.enable');
await call('Profiler.setSamplingInterval', { interval: Number(values['interval-us']) });
await call('Profiler.start');
process.stderr.write(`profiling ${pid} for ${seconds} s\n`);
await sleep(seconds * 1000);
const { profile } = await call<{ profile: unknown }>('Profiler.stop');
await writeFile(out, JSON.stringify(profile));
// Closing the inspector ends this session too: nothing answers it.
ws.send(JSON.stringify({ id: nextId++, method: 'Runtime.evaluate', params: { expression: "process.getBuiltinModule('node:inspector').close()" } }));
await sleep(200);
ws.close();
process.stderr.write(`wrote ${out}\n`);
