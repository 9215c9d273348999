/** Building stack projects and revisions for tests, in the normalised form the hub sends. */
import { createHash } from 'node:crypto';
import type { StackProject, StackRevision, StackService } from '../../src/protocol/stacks.ts';
import { BUSYBOX_IMAGE } from './engines.ts';

export function service(over: Partial<StackService> = {}): StackService {
  return {
    image: BUSYBOX_IMAGE,
    containerName: null,
    command: ['sleep', '3600'],
    entrypoint: null,
    environment: {},
    secretEnvironment: [],
    ports: [],
    mounts: [],
    networks: {},
    labels: {},
    restart: 'no',
    healthcheck: null,
    dependsOn: {},
    user: null,
    workingDir: null,
    capAdd: [],
    capDrop: [],
    devices: [],
    resources: { memoryBytes: null, nanoCpus: null, pidsLimit: null },
    logging: null,
    extraHosts: [],
    secrets: [],
    configs: [],
    // busybox's sleep as pid 1 ignores SIGTERM: do not wait 10 s for it.
    stopGracePeriodNs: 1_000_000_000,
    ...over,
  };
}

export function project(name: string, services: Record<string, StackService>, over: Partial<StackProject> = {}): StackProject {
  return { name, services, networks: {}, volumes: {}, configs: {}, secretFiles: [], ...over };
}

export function revision(p: StackProject, n: number, gate: { stableMs?: number; deadlineMs?: number } = {}): StackRevision {
  return {
    stack: p.name,
    revision: n,
    project: p,
    gate: { stableMs: gate.stableMs ?? 1_000, deadlineMs: gate.deadlineMs ?? 30_000 },
    digest: createHash('sha256').update(JSON.stringify(p)).digest('hex'),
  };
}

/** A shell healthcheck in Docker's form, checked every 300 ms. */
export function shellCheck(cmd: string, retries = 3): StackService['healthcheck'] {
  return { test: ['CMD-SHELL', cmd], intervalNs: 300_000_000, timeoutNs: 2_000_000_000, retries, startPeriodNs: null };
}
