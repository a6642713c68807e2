// What a start-up has opened so far, closed in reverse: one list serves both a
// start that fails half-way and the close() of one that succeeded, so the
// teardown order is written once.
export class CleanupStack {
  private readonly steps: (() => void | Promise<void>)[] = [];

  push(step: () => void | Promise<void>): void {
    this.steps.push(step);
  }

  /** Runs every step, newest first, even after one throws; then throws the first error. */
  async unwind(): Promise<void> {
    let first: { err: unknown } | undefined;
    for (const step of this.steps.splice(0).reverse()) {
      try {
        await step();
      } catch (err) {
        first ??= { err };
      }
    }
    if (first) throw first.err;
  }
}
