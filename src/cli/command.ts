/** The shape every CLI command has: a summary, a usage text for --help, and a run function. */
export interface Command {
  summary: string;
  usage: string;
  run(args: string[]): Promise<void>;
}

/** A usage mistake: printed with a pointer to --help, exit status 2. */
export class UsageError extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'UsageError';
  }
}
