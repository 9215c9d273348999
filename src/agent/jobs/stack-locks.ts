/** One holder per stack at a time, in the order they asked: a second job for a stack waits for the first. */
export class StackLocks {
  readonly #tails = new Map<string, Promise<void>>();

  async acquire(stack: string): Promise<() => void> {
    const previous = this.#tails.get(stack) ?? Promise.resolve();
    let release!: () => void;
    const mine = new Promise<void>((resolve) => (release = resolve));
    const tail = previous.then(() => mine);
    this.#tails.set(stack, tail);
    await previous;
    return () => {
      release();
      if (this.#tails.get(stack) === tail) this.#tails.delete(stack);
    };
  }
}
