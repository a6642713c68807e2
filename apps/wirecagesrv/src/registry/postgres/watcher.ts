// Hearing the other nodes' changes: a connection of its own that LISTENs on
// the changes channel and hands each valid change from another node to the
// caller (this node's own come back too, and are dropped: it applied them when
// it made them). NOTIFY reaches only those listening at the time, so a lost
// connection is a gap: the watcher reconnects with a capped backoff, LISTENs
// again, and only then calls onGap, so that the caller's full reconcile
// starts when nothing can slip between it and the changes heard again. A
// periodic ping finds a connection that died without a word (a lost network).
import pg from 'pg';
import type { Logger } from '@wirecage/wg-engine';
import type { RegistryChange } from '../types.js';
import { clientConfig, describeError, type ConnectionSettings } from './connect.js';
import { CHANNEL, decodeChange } from './notify.js';

export interface WatchSettings {
  connection: ConnectionSettings;
  node: string;
  log: Logger;
  /** First reconnect delay, doubled per failed attempt up to maxRetryMs. */
  firstRetryMs?: number;
  maxRetryMs?: number;
  /** How often the idle connection is pinged. */
  pingMs?: number;
}

export class ChangeWatcher {
  private client: pg.Client | null = null;
  private closed = false;
  private attempts = 0;
  private retryTimer: NodeJS.Timeout | null = null;
  private readonly pingTimer: NodeJS.Timeout;

  private constructor(
    private readonly s: WatchSettings,
    private readonly onChange: (c: RegistryChange) => void,
    private readonly onGap: () => void,
  ) {
    this.pingTimer = setInterval(() => this.ping(), s.pingMs ?? 10_000).unref();
  }

  /** Listening once this resolves; a first connection that fails rejects. */
  static async start(s: WatchSettings, onChange: (c: RegistryChange) => void, onGap: () => void): Promise<ChangeWatcher> {
    const w = new ChangeWatcher(s, onChange, onGap);
    try {
      w.client = await w.connect();
    } catch (err) {
      await w.close();
      throw err;
    }
    return w;
  }

  private async connect(): Promise<pg.Client> {
    const c = new pg.Client({
      ...clientConfig({ ...this.s.connection, applicationName: `${this.s.connection.applicationName}:listen` }),
      query_timeout: 10_000,
    });
    c.on('notification', (m) => this.deliver(m));
    c.on('error', (err) => this.lost(c, err));
    c.on('end', () => this.lost(c, new Error('the connection ended')));
    try {
      await c.connect();
      await c.query(`LISTEN ${CHANNEL}`);
    } catch (err) {
      await c.end().catch(() => {});
      throw err;
    }
    return c;
  }

  private deliver(m: pg.Notification): void {
    if (m.channel !== CHANNEL) return;
    const change = decodeChange(m.payload ?? '');
    if (change instanceof Error) {
      this.s.log.warn(`registry: ignored a change notification from process ${m.processId}: ${change.message}`);
      return;
    }
    if (change.node === this.s.node) return;
    try {
      this.onChange(change);
    } catch (err) {
      this.s.log.error(`registry: applying a change of node ${change.node} failed: ${(err as Error).message}`);
    }
  }

  private ping(): void {
    const c = this.client;
    if (c) c.query('SELECT 1').catch((err: unknown) => this.lost(c, err));
  }

  private lost(c: pg.Client, err: unknown): void {
    if (this.closed || this.client !== c) return;
    this.client = null;
    c.end().catch(() => {});
    this.s.log.warn(`registry: lost the connection that hears other nodes' changes (${describeError(err)}); reconnecting`);
    this.retry();
  }

  private retry(): void {
    const delay = Math.min(this.s.maxRetryMs ?? 5_000, (this.s.firstRetryMs ?? 100) * 2 ** this.attempts);
    this.attempts++;
    this.retryTimer = setTimeout(() => {
      this.retryTimer = null;
      this.connect().then(
        (c) => this.reconnected(c),
        (err: unknown) => {
          if (this.closed) return;
          this.s.log.debug(`registry: reconnecting to hear changes failed (${describeError(err)}); retrying`);
          this.retry();
        },
      );
    }, delay);
  }

  private reconnected(c: pg.Client): void {
    if (this.closed) {
      c.end().catch(() => {});
      return;
    }
    this.client = c;
    this.attempts = 0;
    this.s.log.info("registry: hearing other nodes' changes again; reconciling what may have been missed");
    try {
      this.onGap();
    } catch (err) {
      this.s.log.error(`registry: reconciling after a gap failed: ${(err as Error).message}`);
    }
  }

  async close(): Promise<void> {
    this.closed = true;
    clearInterval(this.pingTimer);
    if (this.retryTimer) clearTimeout(this.retryTimer);
    const c = this.client;
    this.client = null;
    await c?.end().catch(() => {});
  }
}
