// What a start-up has opened so far (namespace fds, TUNs, sockets, servers,
// files), closed in reverse: each undo step is pushed right after its
// acquisition, so one list serves both a start that fails half-way and the
// close() of one that succeeded, and the teardown order is written once. Both
// stage 2s (wirecage's cage, wirecagesrv's server) build on it.
export class CleanupStack {
  private readonly steps: (() => unknown)[] = [];

  push(step: () => unknown): void {
    this.steps.push(step);
  }

  /**
   * Runs every step, newest first, even after one fails. Without `onError` it then throws the first
   * error; with it, each error goes there and unwind() resolves. The stack is empty afterwards.
   */
  async unwind(onError?: (err: unknown) => void): Promise<void> {
    let first: { err: unknown } | undefined;
    for (const step of this.steps.splice(0).reverse()) {
      try {
        await step();
      } catch (err) {
        if (onError) onError(err);
        else first ??= { err };
      }
    }
    if (first) throw first.err;
  }
}
