// What every lab bench (dataplane.bench.ts, server.bench.ts) wraps its run
// in: a log line with the seconds since the start, the labs it builds, and
// their teardown at the end, on failure, and on SIGINT/SIGTERM/SIGHUP.
import { run } from '@wirecage/tests/lib/exec.js';
import { Lab } from '@wirecage/tests/lib/netns.js';
import { WIRECAGE_BIN } from '@wirecage/tests/lib/cage.js';

export class BenchSession {
  readonly started = Date.now();
  private readonly labs: Lab[] = [];
  private interrupted = false;

  constructor(private readonly name: string) {
    for (const sig of ['SIGINT', 'SIGTERM', 'SIGHUP'] as const) {
      process.on(sig, () => {
        if (this.interrupted) return;
        this.interrupted = true;
        this.log(`${sig}: tearing the labs down`);
        void this.teardownAll().finally(() => process.exit(130));
      });
    }
  }

  /** One line on stderr: `[name  12 s] msg`. */
  readonly log = (msg: string): void => {
    process.stderr.write(`[${this.name} ${((Date.now() - this.started) / 1000).toFixed(0).padStart(3)} s] ${msg}\n`);
  };

  /** A new lab, torn down with the others. */
  readonly newLab = (): Lab => {
    const lab = new Lab();
    this.labs.push(lab);
    return lab;
  };

  /**
   * Runs one step of the bench. After a signal the labs vanish under the running step: it then
   * never settles, so nothing it measured gets reported, and a step that failed because its lab
   * was torn down is no error either. The signal handler exits once the labs are gone.
   */
  readonly step = async <T>(fn: () => Promise<T>): Promise<T> => {
    try {
      const value = await fn();
      if (!this.interrupted) return value;
    } catch (e) {
      if (!this.interrupted) throw e;
    }
    return new Promise<never>(() => {});
  };

  /** Tears down every lab made so far, logging failures; Lab.teardown() may run again and waits for a teardown under way. */
  readonly teardownAll = async (): Promise<void> => {
    const results = await Promise.allSettled(this.labs.map((l) => l.teardown()));
    for (const r of results) if (r.status === 'rejected') this.log(`teardown failed: ${(r.reason as Error).message}`);
  };
}

/** The text of `wirecage run --help`; throws, pointing at `npm run build`, when the CLI does not run. */
export async function wirecageRunHelp(): Promise<string> {
  const help = await run(process.execPath, [WIRECAGE_BIN, 'run', '--help'], { timeoutMs: 30_000 });
  if (help.code !== 0)
    throw new Error(
      `\`wirecage run --help\` failed (exit ${help.code}); build the tree first with \`npm run build\`: ${help.stderr.trim()}`,
    );
  return help.stdout;
}
