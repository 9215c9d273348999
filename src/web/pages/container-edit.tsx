/** Change a container: edit env, labels, ports, restart policy and resources, then recreate it
 * keeping its volumes (container-spec.ts's recreateBody). Each step goes through the Docker
 * endpoint, so the host's policy judges it; if the new container is refused, the old one is
 * given back its name (and started again if it was running). Networks beyond the first are
 * connected before the start. On a host that requires signed intent every step is signed with
 * this browser's key (lib/api.ts); without a key the host lists, Recreate is disabled with the reason. */
import type { JSX } from 'preact';
import { useEffect, useState } from 'preact/hooks';
import { toast } from '../components/toasts.tsx';
import { AsyncView, InlineError, PageHeader, SubmitButton, buttonClass, useAsync } from '../components/ui.tsx';
import { canChange } from '../lib/access.ts';
import { del, dockerPath, errorMessage, get, post } from '../lib/api.ts';
import { recreateBody, specFromInspect, type InspectForSpec, type RunSpec } from '../lib/container-spec.ts';
import { navigate } from '../lib/router.ts';
import { useSigningBlock } from '../lib/signing.ts';
import type { Me } from '../lib/types.ts';
import { SigningNeeded } from './containers.tsx';
import { ContainerFields } from './run-container.tsx';

const EDITABLE = ['env', 'labels', 'ports', 'restart', 'memoryMb', 'cpus', 'pids'] as const;

type Inspect = InspectForSpec & { Id: string; State: { Running: boolean } };

/** Stop, set aside, create anew, start, then remove the old one (its volumes stay). */
export async function recreateContainer(node: string, info: Inspect, spec: RunSpec): Promise<string> {
  const made = recreateBody(info, spec);
  if (!made.body) throw new Error(Object.values(made.errors)[0] ?? 'The form has errors.');
  const name = info.Name.replace(/^\//, '');
  const c = (id: string, rest: string): string => dockerPath(node, `/containers/${encodeURIComponent(id)}${rest}`);
  const aside = `${name}-old-${Date.now().toString(36)}`;
  if (info.State.Running) await post(c(info.Id, '/stop'));
  await post(c(info.Id, `/rename?name=${encodeURIComponent(aside)}`));
  let created: { Id: string } | null = null;
  try {
    created = await post<{ Id: string }>(dockerPath(node, `/containers/create?name=${encodeURIComponent(name)}`), made.body);
    for (const { network, settings } of made.connect) {
      await post(dockerPath(node, `/networks/${encodeURIComponent(network)}/connect`), { Container: created.Id, EndpointConfig: settings });
    }
  } catch (err) {
    if (created) await del(c(created.Id, '?force=1')).catch(() => {});
    await post(c(info.Id, `/rename?name=${encodeURIComponent(name)}`)).catch(() => {});
    if (info.State.Running) await post(c(info.Id, '/start')).catch(() => {});
    throw err;
  }
  if (info.State.Running) await post(c(created.Id, '/start'));
  await del(c(info.Id, ''));
  return created.Id;
}

export function ContainerEditPage({ me, node, id }: { me: Me; node: string; id: string }): JSX.Element {
  const inspect = useAsync((signal) => get<Inspect>(dockerPath(node, `/containers/${encodeURIComponent(id)}/json`), { signal }), [node, id]);
  const [spec, setSpec] = useState<RunSpec | null>(null);
  const [errors, setErrors] = useState<Partial<Record<keyof RunSpec, string>>>({});
  const [busy, setBusy] = useState(false);
  const [refused, setRefused] = useState<string | null>(null);
  useEffect(() => {
    if (inspect.data) setSpec(specFromInspect(inspect.data));
  }, [inspect.data]);
  const unsignable = useSigningBlock(node);
  const back = `/containers/${encodeURIComponent(node)}/${encodeURIComponent(id)}`;

  const submit = async (e: Event): Promise<void> => {
    e.preventDefault();
    if (!inspect.data || !spec) return;
    const made = recreateBody(inspect.data, spec);
    setErrors(made.errors);
    if (!made.body) return;
    setBusy(true);
    setRefused(null);
    try {
      const newId = await recreateContainer(node, inspect.data, spec);
      toast.success(`Recreated ${spec.name} on ${node}; its volumes were kept.`);
      navigate(`/containers/${encodeURIComponent(node)}/${newId.slice(0, 12)}`);
    } catch (err) {
      setRefused(errorMessage(err));
    } finally {
      setBusy(false);
    }
  };

  return (
    <>
      <PageHeader title={`Change ${spec?.name ?? id}`} sub="Saving recreates the container from its image with these settings; its volumes and binds are kept.">
        <a class={buttonClass('ghost')} href={back}>
          Cancel
        </a>
      </PageHeader>
      <AsyncView state={inspect} loadingLabel="Inspecting…" errorTitle="Could not inspect this container">
        {() =>
          spec ? (
            <form class="deploy-form" onSubmit={(ev) => void submit(ev)} noValidate>
              <ContainerFields spec={spec} set={(f, v) => setSpec((s) => (s ? { ...s, [f]: v } : s))} errors={errors} only={EDITABLE} />
              {refused && <InlineError>{refused}</InlineError>}
              {canChange(me, node) && unsignable && <SigningNeeded reason={unsignable} />}
              <div class="form-actions">
                <SubmitButton busy={busy} disabled={!canChange(me, node) || unsignable !== null}>
                  Recreate
                </SubmitButton>
              </div>
            </form>
          ) : null
        }
      </AsyncView>
    </>
  );
}
