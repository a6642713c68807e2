// The nodes sharing one PostgreSQL registry: each records its heartbeat in
// `nodes` and is counted with the sessions it holds (peers whose last
// handshake it completed), and hears the others' changes (watcher.ts).
import type pg from 'pg';
import { RegistryError } from '../errors.js';
import type { Fleet, NodeRecord, RegistryChange } from '../types.js';
import { describeError } from './connect.js';
import { ChangeWatcher, type WatchSettings } from './watcher.js';

interface NodeRow {
  name: string;
  endpoint: string;
  api: string;
  started_at: string;
  heartbeat: string;
  sessions: string;
}

const NODES_SQL = `
  SELECT n.name, n.endpoint, n.api, n.started_at, n.heartbeat,
         (SELECT count(*) FROM peers p WHERE p.session_node = n.name) AS sessions
  FROM nodes n
  WHERE $1::bigint IS NULL OR n.heartbeat > $2::bigint - $1::bigint
  ORDER BY n.name`;

export class PostgresFleet implements Fleet {
  private readonly watchers = new Set<ChangeWatcher>();

  constructor(
    private readonly db: pg.Pool,
    private readonly watch_: WatchSettings,
  ) {}

  private get node(): string {
    return this.watch_.node;
  }

  async heartbeat(info: { endpoint: string; api: string; startedAt: Date }, now = Date.now()): Promise<void> {
    await this.db.query(
      `INSERT INTO nodes (name, endpoint, api, started_at, heartbeat) VALUES ($1, $2, $3, $4, $5)
       ON CONFLICT (name) DO UPDATE SET endpoint = excluded.endpoint, api = excluded.api,
         started_at = excluded.started_at, heartbeat = excluded.heartbeat`,
      [this.node, info.endpoint, info.api, info.startedAt.getTime(), now],
    );
  }

  async nodes(withinMs?: number, now = Date.now()): Promise<NodeRecord[]> {
    const r = await this.db.query<NodeRow>(NODES_SQL, [withinMs ?? null, now]);
    return r.rows.map((n) => ({
      name: n.name,
      endpoint: n.endpoint,
      api: n.api,
      startedAt: new Date(Number(n.started_at)),
      heartbeat: new Date(Number(n.heartbeat)),
      sessions: Number(n.sessions),
    }));
  }

  async leave(): Promise<void> {
    await this.db.query('DELETE FROM nodes WHERE name = $1', [this.node]);
  }

  async watch(onChange: (c: RegistryChange) => void, onGap: () => void): Promise<{ close(): Promise<void> }> {
    let w: ChangeWatcher;
    try {
      w = await ChangeWatcher.start(this.watch_, onChange, onGap);
    } catch (err) {
      throw new RegistryError(`cannot listen for the other nodes' changes: ${describeError(err)}`, { cause: err });
    }
    this.watchers.add(w);
    return {
      close: async () => {
        this.watchers.delete(w);
        await w.close();
      },
    };
  }

  /** Ends every watcher (the registry is closing). */
  async close(): Promise<void> {
    const all = [...this.watchers];
    this.watchers.clear();
    await Promise.all(all.map((w) => w.close()));
  }
}
