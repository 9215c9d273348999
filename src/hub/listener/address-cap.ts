/**
 * Connections per client address, in two budgets: ordinary connections (people, tools, and
 * every connection before it proves anything) and agent links (one per host; a site's NAT
 * carries all of them from one address). A connection is counted from accept until it closes.
 */
import type { Socket } from 'node:net';

interface AddressCount {
  connections: number;
  agentLinks: number;
  /** Set when a refusal was logged; an address is logged again only after it held nothing. */
  warned: boolean;
}

interface Held {
  address: string;
  agentLink: boolean;
}

export interface AddressCapLimits {
  perAddress: number;
  agentLinksPerAddress: number;
}

/** Both sides of a connection (the accepted TCP socket and the TLS socket over it) report the
 * same remote address and port, which is how a later stage finds what accept counted. */
export function connectionKey(socket: Socket): string | null {
  return socket.remoteAddress === undefined ? null : `${socket.remoteAddress}|${socket.remotePort}`;
}

export class AddressCap {
  readonly #limits: AddressCapLimits;
  readonly #byAddress = new Map<string, AddressCount>();
  readonly #byConnection = new Map<string, Held>();
  readonly #onRefused: (address: string) => void;

  constructor(limits: AddressCapLimits, onFirstRefusal: (address: string) => void = () => {}) {
    this.#limits = limits;
    this.#onRefused = onFirstRefusal;
  }

  /** Counts a just-accepted socket, or answers false when its address holds its cap already. */
  admit(socket: Socket): boolean {
    const key = connectionKey(socket);
    const address = socket.remoteAddress;
    if (key === null || address === undefined) return false;
    const count = this.#byAddress.get(address) ?? { connections: 0, agentLinks: 0, warned: false };
    if (count.connections >= this.#limits.perAddress) {
      if (!count.warned) {
        count.warned = true;
        this.#onRefused(address);
      }
      return false;
    }
    count.connections++;
    this.#byAddress.set(address, count);
    const held: Held = { address, agentLink: false };
    this.#byConnection.set(key, held);
    socket.once('close', () => this.#release(key, held));
    return true;
  }

  /** Moves a connection that asked for the agent gateway into the agent-link budget; false when
   * that budget is full (the caller refuses the upgrade). Unknown connections pass. */
  moveToAgentLinks(socket: Socket): boolean {
    const key = connectionKey(socket);
    const held = key === null ? undefined : this.#byConnection.get(key);
    if (!held || held.agentLink) return true;
    const count = this.#byAddress.get(held.address)!;
    if (count.agentLinks >= this.#limits.agentLinksPerAddress) return false;
    count.connections--;
    count.agentLinks++;
    held.agentLink = true;
    return true;
  }

  /** Addresses holding at least one connection (for tests and figures). */
  get addresses(): number {
    return this.#byAddress.size;
  }

  #release(key: string, held: Held): void {
    if (this.#byConnection.get(key) === held) this.#byConnection.delete(key);
    const count = this.#byAddress.get(held.address);
    if (!count) return;
    if (held.agentLink) count.agentLinks--;
    else count.connections--;
    if (count.connections === 0 && count.agentLinks === 0) this.#byAddress.delete(held.address);
  }
}
