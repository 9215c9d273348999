/**
 * The wording of refusals. A refusal reads "<what> (<rule> in <policy source>)"; AgentPolicy
 * puts "dockfleet policy on this host refuses " in front, so the Docker CLI prints e.g.
 * `dockfleet policy on this host refuses privileged containers (allow.privileged is false in
 * /etc/dockfleet/policy.json)`.
 */
export type Say = (what: string, rule: string) => string;

export const REFUSAL_PREFIX = 'dockfleet policy on this host refuses ';

export function sayer(source: string): Say {
  return (what, rule) => `${what} (${rule} in ${source})`;
}

/** Foreign text quoted into a refusal: JSON-quoted, line and C1 control characters escaped
 * too (so nothing can forge a line), and cut short. */
export function quote(text: string, max = 120): string {
  const json = JSON.stringify(text.length > max ? `${text.slice(0, max)}…` : text);
  return json.replace(/[\u007f-\u009f\u2028\u2029]/g, (c) => `\\u${c.charCodeAt(0).toString(16).padStart(4, '0')}`);
}

/** A body field the policy cannot read is refused (the engine would reject it too). */
export function malformed(say: Say, what: string): string {
  return say(`a malformed ${what}`, 'it cannot be checked against the policy');
}
