/**
 * Create a volume or a network on one node, through that node's Docker endpoint, so the host's
 * own policy judges the request (a local volume whose options bind a host directory, say) and a
 * refusal comes back in the daemon's words.
 */
import type { JSX } from 'preact';
import { useState } from 'preact/hooks';
import { dockerPath, errorMessage, json } from '../lib/api.ts';
import { Dialog } from './dialog.tsx';
import { toast } from './toasts.tsx';
import { InlineError, SubmitButton, buttonClass } from './ui.tsx';

/** "key=value" lines into a map; a line without "=" is an error that names it. */
export function parsePairs(text: string, what: string): Record<string, string> {
  const out: Record<string, string> = {};
  for (const raw of text.split('\n')) {
    const line = raw.trim();
    if (!line) continue;
    const eq = line.indexOf('=');
    if (eq <= 0) throw new Error(`${what}: "${line}" is not key=value`);
    out[line.slice(0, eq).trim()] = line.slice(eq + 1).trim();
  }
  return out;
}

const NAME = /^[a-zA-Z0-9][a-zA-Z0-9_.-]*$/;

function TextField({
  id,
  label,
  value,
  set,
  hint,
  placeholder,
  required,
}: {
  id: string;
  label: string;
  value: string;
  set: (v: string) => void;
  hint?: string;
  placeholder?: string;
  required?: boolean;
}): JSX.Element {
  return (
    <div class="field">
      <label for={id}>{label}</label>
      <input
        id={id}
        class="mono"
        value={value}
        placeholder={placeholder}
        autocomplete="off"
        spellcheck={false}
        required={required}
        {...(hint ? { 'aria-describedby': `${id}-hint` } : {})}
        onInput={(e) => set(e.currentTarget.value)}
      />
      {hint && (
        <div class="hint" id={`${id}-hint`}>
          {hint}
        </div>
      )}
    </div>
  );
}

function PairsField({ id, label, value, set, hint, placeholder }: { id: string; label: string; value: string; set: (v: string) => void; hint: string; placeholder: string }): JSX.Element {
  return (
    <div class="field">
      <label for={id}>{label}</label>
      <textarea id={id} class="mono" rows={2} value={value} placeholder={placeholder} spellcheck={false} aria-describedby={`${id}-hint`} onInput={(e) => set(e.currentTarget.value)} />
      <div class="hint" id={`${id}-hint`}>
        {hint}
      </div>
    </div>
  );
}

function NodeField({ id, nodes, value, set }: { id: string; nodes: string[]; value: string; set: (v: string) => void }): JSX.Element {
  return (
    <div class="field">
      <label for={id}>Node</label>
      <select id={id} value={value} onChange={(e) => set(e.currentTarget.value)}>
        {nodes.map((n) => (
          <option key={n} value={n}>
            {n}
          </option>
        ))}
      </select>
    </div>
  );
}

function useSubmit(send: () => Promise<string>, onDone: (node: string) => void): { busy: boolean; error: string | null; submit: (e: Event) => void } {
  const [busy, setBusy] = useState(false);
  const [error, setError] = useState<string | null>(null);
  const submit = (e: Event): void => {
    e.preventDefault();
    setBusy(true);
    setError(null);
    send()
      .then(onDone, (err: unknown) => setError(errorMessage(err)))
      .finally(() => setBusy(false));
  };
  return { busy, error, submit };
}

export function CreateVolumeDialog({ nodes, node: initial, onClose, onCreated }: { nodes: string[]; node?: string; onClose: () => void; onCreated: (node: string) => void }): JSX.Element {
  const [node, setNode] = useState(initial && nodes.includes(initial) ? initial : (nodes[0] ?? ''));
  const [name, setName] = useState('');
  const [driver, setDriver] = useState('local');
  const [labels, setLabels] = useState('');
  const [opts, setOpts] = useState('');
  const { busy, error, submit } = useSubmit(
    async () => {
      if (name && !NAME.test(name)) throw new Error('A volume name uses letters, digits, "_", "." and "-", and starts with a letter or digit.');
      const body = { Name: name, Driver: driver.trim() || 'local', Labels: parsePairs(labels, 'Labels'), DriverOpts: parsePairs(opts, 'Driver options') };
      const v = await json<{ Name: string }>('POST', dockerPath(node, '/volumes/create'), { body });
      toast.success(`Volume ${v?.Name ?? name} created on ${node}`);
      return node;
    },
    (n) => {
      onCreated(n);
      onClose();
    },
  );
  return (
    <Dialog title="Create a volume" onClose={onClose} busy={busy}>
      <form onSubmit={submit}>
        <NodeField id="vol-node" nodes={nodes} value={node} set={setNode} />
        <TextField id="vol-name" label="Name" value={name} set={setName} placeholder="appdata" hint="Empty: the engine picks a random name." />
        <TextField id="vol-driver" label="Driver" value={driver} set={setDriver} required />
        <PairsField id="vol-labels" label="Labels" value={labels} set={setLabels} placeholder="team=web" hint="One key=value a line." />
        <PairsField
          id="vol-opts"
          label="Driver options"
          value={opts}
          set={setOpts}
          placeholder={'type=none\no=bind\ndevice=/srv/data'}
          hint="One key=value a line. A bind (o=bind, device=…) is judged by the host's policy."
        />
        <InlineError>{error}</InlineError>
        <div class="form-actions">
          <button type="button" class={buttonClass('default')} onClick={onClose} disabled={busy}>
            Cancel
          </button>
          <SubmitButton busy={busy} disabled={!node}>
            Create volume
          </SubmitButton>
        </div>
      </form>
    </Dialog>
  );
}

export function CreateNetworkDialog({ nodes, node: initial, onClose, onCreated }: { nodes: string[]; node?: string; onClose: () => void; onCreated: (node: string) => void }): JSX.Element {
  const [node, setNode] = useState(initial && nodes.includes(initial) ? initial : (nodes[0] ?? ''));
  const [name, setName] = useState('');
  const [driver, setDriver] = useState('bridge');
  const [subnet, setSubnet] = useState('');
  const [gateway, setGateway] = useState('');
  const [labels, setLabels] = useState('');
  const [internal, setInternal] = useState(false);
  const { busy, error, submit } = useSubmit(
    async () => {
      if (!NAME.test(name)) throw new Error('A network needs a name of letters, digits, "_", "." and "-", starting with a letter or digit.');
      if (gateway.trim() && !subnet.trim()) throw new Error('A gateway needs a subnet.');
      const body = {
        Name: name,
        Driver: driver.trim() || 'bridge',
        Internal: internal,
        CheckDuplicate: true,
        Labels: parsePairs(labels, 'Labels'),
        ...(subnet.trim() ? { IPAM: { Driver: 'default', Config: [{ Subnet: subnet.trim(), ...(gateway.trim() ? { Gateway: gateway.trim() } : {}) }] } } : {}),
      };
      await json('POST', dockerPath(node, '/networks/create'), { body });
      toast.success(`Network ${name} created on ${node}`);
      return node;
    },
    (n) => {
      onCreated(n);
      onClose();
    },
  );
  return (
    <Dialog title="Create a network" onClose={onClose} busy={busy}>
      <form onSubmit={submit}>
        <NodeField id="net-node" nodes={nodes} value={node} set={setNode} />
        <TextField id="net-name" label="Name" value={name} set={setName} placeholder="backend" required />
        <TextField id="net-driver" label="Driver" value={driver} set={setDriver} required />
        <TextField id="net-subnet" label="Subnet" value={subnet} set={setSubnet} placeholder="172.30.0.0/24" hint="Empty: the engine picks one from its pool." />
        <TextField id="net-gateway" label="Gateway" value={gateway} set={setGateway} placeholder="172.30.0.1" />
        <PairsField id="net-labels" label="Labels" value={labels} set={setLabels} placeholder="team=web" hint="One key=value a line." />
        <div class="check">
          <input id="net-internal" type="checkbox" checked={internal} onChange={(e) => setInternal(e.currentTarget.checked)} />
          <label for="net-internal">Internal: no route out of the network</label>
        </div>
        <InlineError>{error}</InlineError>
        <div class="form-actions">
          <button type="button" class={buttonClass('default')} onClick={onClose} disabled={busy}>
            Cancel
          </button>
          <SubmitButton busy={busy} disabled={!node}>
            Create network
          </SubmitButton>
        </div>
      </form>
    </Dialog>
  );
}
