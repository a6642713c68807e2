// The SQLite half of /readyz's registry check: a committed write, on a
// connection of its own with a short lock wait, so that a probe proves what
// a registration needs (the lock, the WAL written and synced) without
// holding the event loop for the main connection's long busy timeout.
import Database from 'better-sqlite3';

/** How long a probe waits for another writer's lock before calling the registry unwritable. */
const WRITE_WAIT_MS = 500;

/** Commits a heartbeat row (meta key "readyz_heartbeat"); a connection that failed is reopened by the next probe. */
export class WriteProbe {
  private db: Database.Database | null = null;

  constructor(private readonly path: string) {}

  run(): void {
    try {
      if (!this.db) {
        this.db = new Database(this.path, { fileMustExist: true, timeout: WRITE_WAIT_MS });
        this.db.pragma('synchronous = FULL');
      }
      this.db
        .prepare('INSERT INTO meta (key, value) VALUES (?, ?) ON CONFLICT (key) DO UPDATE SET value = excluded.value')
        .run('readyz_heartbeat', new Date().toISOString());
    } catch (err) {
      this.close();
      // The answer is public (the API's listener): it says what failed, not where the registry lives.
      throw new Error(`cannot write to the registry: ${(err as Error).message}`, { cause: err });
    }
  }

  close(): void {
    this.db?.close();
    this.db = null;
  }
}
