/**
 * A backup's pre and post commands (`dockfleet.backup.pre` / `.post` labels): run inside their
 * container through the Engine API's exec (never the docker CLI), as `sh -c LABEL`, with the
 * output kept bounded for the job's log and the exit code checked.
 */
import { readBounded } from '../../lib/read-bounded.ts';
import { DockerDemuxer } from '../../web/lib/docker-stream.ts';
import type { StackEngine } from '../stacks/stack-engine.ts';

const MAX_OUTPUT = 64 * 1024;

export interface ExecOutcome {
  exitCode: number;
  output: string[];
}

export async function execInContainer(engine: StackEngine, container: string, command: string, timeoutMs = 10 * 60_000): Promise<ExecOutcome> {
  const created = (await engine.must('POST', `/containers/${encodeURIComponent(container)}/exec`, {
    Cmd: ['sh', '-c', command],
    AttachStdout: true,
    AttachStderr: true,
    Tty: false,
  })) as { Id?: unknown };
  if (typeof created?.Id !== 'string') throw new Error(`the engine made no exec in ${container}`);
  const res = await engine.client.raw({ method: 'POST', path: `/exec/${created.Id}/start`, body: { Detach: false, Tty: false }, timeoutMs });
  const raw = await readBounded(res as AsyncIterable<Buffer>, MAX_OUTPUT * 4);
  if ((res.statusCode ?? 0) !== 200) throw new Error(`the engine refused to run the command in ${container} (${res.statusCode ?? 0})`);
  const text = raw
    ? new DockerDemuxer()
        .push(raw)
        .map((f) => Buffer.from(f.data).toString('utf8'))
        .join('')
        .slice(-MAX_OUTPUT)
    : '(output too long to keep)';
  const inspect = (await engine.must('GET', `/exec/${created.Id}/json`)) as { ExitCode?: unknown };
  return {
    exitCode: typeof inspect?.ExitCode === 'number' ? inspect.ExitCode : -1,
    output: text
      .split('\n')
      .filter((l) => l !== '')
      .slice(-20),
  };
}
