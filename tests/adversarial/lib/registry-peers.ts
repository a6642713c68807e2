// A wirecagesrv registry file as SQLite sees it, opened read-only: its
// `PRAGMA integrity_check` and the peers it holds, to compare with what the
// API said.
export interface RegistryPeer {
  key: string;
  address4: string;
  address6: string;
}

export async function readRegistry(path: string): Promise<{ integrity: string; peers: RegistryPeer[] }> {
  const { default: Database } = await import('better-sqlite3');
  const db = new Database(path, { readonly: true, fileMustExist: true });
  try {
    const integrity = (db.pragma('integrity_check') as { integrity_check: string }[]).map((r) => r.integrity_check).join('; ');
    const peers = db.prepare('SELECT public_key AS key, address4, address6 FROM peers ORDER BY public_key').all() as RegistryPeer[];
    return { integrity, peers };
  } finally {
    db.close();
  }
}
