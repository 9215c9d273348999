/** A fixed-size ring of points: the newest `capacity` kept, the oldest overwritten. */
export class StatsRing<T> {
  readonly #items: T[] = [];
  #start = 0;
  readonly capacity: number;

  constructor(capacity: number) {
    this.capacity = capacity;
  }

  push(item: T): void {
    if (this.#items.length < this.capacity) this.#items.push(item);
    else {
      this.#items[this.#start] = item;
      this.#start = (this.#start + 1) % this.capacity;
    }
  }

  /** Oldest first. */
  toArray(): T[] {
    return [...this.#items.slice(this.#start), ...this.#items.slice(0, this.#start)];
  }

  get size(): number {
    return this.#items.length;
  }
}
