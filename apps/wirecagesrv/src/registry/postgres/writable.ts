// The PostgreSQL half of /readyz's registry check: a committed write of this
// node's heartbeat row (meta key "readyz_heartbeat:<node>") on a connection of
// its own, with short connect, statement and lock timeouts, so a probe answers
// within a few seconds whatever the pool is doing and proves what a
// registration needs: the database reachable, writable, its locks free.
import pg from 'pg';
import { clientConfig, describeError, type ConnectionSettings } from './connect.js';

const PROBE_TIMEOUTS = { connectTimeoutMs: 2_000, statementTimeoutMs: 2_000, lockTimeoutMs: 500 };
/** Client-side bound too: a server that stopped answering (a lost network) returns no statement timeout. */
const QUERY_TIMEOUT_MS = 3_000;

export class WriteProbe {
  private client: pg.Client | null = null;
  private running: Promise<void> | null = null;

  constructor(
    private readonly settings: ConnectionSettings,
    private readonly node: string,
  ) {}

  /** Two probes at once share one write. */
  run(): Promise<void> {
    this.running ??= this.write().finally(() => (this.running = null));
    return this.running;
  }

  private async write(): Promise<void> {
    try {
      const c = this.client ?? (this.client = await this.open());
      await c.query('INSERT INTO meta (key, value) VALUES ($1, $2) ON CONFLICT (key) DO UPDATE SET value = excluded.value', [
        `readyz_heartbeat:${this.node}`,
        new Date().toISOString(),
      ]);
    } catch (err) {
      await this.close();
      // The answer is public (the API's listener): it says what failed, never where the registry lives.
      throw new Error(`cannot write to the registry: ${describeError(err)}`, { cause: err });
    }
  }

  private async open(): Promise<pg.Client> {
    const c = new pg.Client({ ...clientConfig({ ...this.settings, ...PROBE_TIMEOUTS }), query_timeout: QUERY_TIMEOUT_MS });
    // An error while idle (the server went away) is the next probe's to find: it reconnects.
    c.on('error', () => {
      if (this.client === c) this.client = null;
      c.end().catch(() => {});
    });
    try {
      await c.connect();
    } catch (err) {
      await c.end().catch(() => {});
      throw err;
    }
    return c;
  }

  async close(): Promise<void> {
    const c = this.client;
    this.client = null;
    await c?.end().catch(() => {});
  }
}
