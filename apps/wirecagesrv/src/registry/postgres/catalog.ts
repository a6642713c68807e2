// What the schema must be, as PostgreSQL's catalog describes it: the
// integrity check that stands in for SQLite's PRAGMA integrity_check. The
// catalog holds no page checksums to verify, but it says whether each table
// has its columns with their types, and whether each key, uniqueness, check
// and foreign key is there and validated (a constraint added NOT VALID, or an
// index left invalid by a failed build, guards nothing). Our tables must have
// exactly these columns and at least these constraints and indexes; an
// operator's extra index is no damage. Written in words that do not depend on
// the server's version (no constraint or index names, no deparsed
// expressions).
import type { Querier } from './tx.js';

export const TABLES = ['wirecagesrv_schema', 'meta', 'peers', 'forwards', 'proof_nonces', 'nodes'] as const;

const COLUMNS = [
  'wirecagesrv_schema.application text not null',
  'wirecagesrv_schema.version integer not null',
  'meta.key text not null',
  'meta.value text not null',
  'peers.public_key text not null',
  'peers.host_index bigint not null',
  'peers.address4 text not null',
  'peers.address6 text not null',
  'peers.created_at bigint not null',
  'peers.last_seen bigint',
  'peers.last_endpoint text',
  'peers.lease_expires bigint',
  'peers.session_node text',
  'forwards.protocol text not null',
  'forwards.public_port integer not null',
  'forwards.peer_public_key text not null',
  'forwards.target_port integer not null',
  'forwards.created_at bigint not null',
  'proof_nonces.nonce text not null',
  'proof_nonces.expires bigint not null',
  'nodes.name text not null',
  'nodes.endpoint text not null',
  'nodes.api text not null',
  'nodes.started_at bigint not null',
  'nodes.heartbeat bigint not null',
];

const CONSTRAINTS = [
  'wirecagesrv_schema PRIMARY KEY (application)',
  'wirecagesrv_schema CHECK (version)',
  'meta PRIMARY KEY (key)',
  'peers PRIMARY KEY (public_key)',
  'peers UNIQUE (host_index)',
  'peers UNIQUE (address4)',
  'peers UNIQUE (address6)',
  'peers CHECK (host_index)',
  'forwards PRIMARY KEY (protocol,public_port)',
  'forwards CHECK (protocol)',
  'forwards CHECK (public_port)',
  'forwards CHECK (target_port)',
  'forwards FOREIGN KEY (peer_public_key) REFERENCES peers (public_key) ON DELETE CASCADE',
  'proof_nonces PRIMARY KEY (nonce)',
  'nodes PRIMARY KEY (name)',
];

const INDEXES = ['forwards INDEX (peer_public_key)', 'peers INDEX (lease_expires)', 'proof_nonces INDEX (expires)'];

const COLUMNS_SQL = `
  SELECT c.relname || '.' || a.attname || ' ' || format_type(a.atttypid, a.atttypmod)
         || CASE WHEN a.attnotnull THEN ' not null' ELSE '' END AS line
  FROM pg_attribute a JOIN pg_class c ON c.oid = a.attrelid
  WHERE c.relnamespace = current_schema()::regnamespace AND c.relkind = 'r' AND c.relname = ANY($1)
    AND a.attnum > 0 AND NOT a.attisdropped`;

const cols = (rel: string, keys: string) => `
  (SELECT string_agg(a.attname, ',' ORDER BY u.o) FROM unnest(${keys}) WITH ORDINALITY u(n, o)
   JOIN pg_attribute a ON a.attrelid = ${rel} AND a.attnum = u.n)`;

const CONSTRAINTS_SQL = `
  SELECT c.relname || ' ' || CASE k.contype WHEN 'p' THEN 'PRIMARY KEY' WHEN 'u' THEN 'UNIQUE' WHEN 'c' THEN 'CHECK'
           WHEN 'f' THEN 'FOREIGN KEY' ELSE 'OTHER ' || k.contype::text END
         || ' (' || coalesce(${cols('k.conrelid', 'k.conkey')}, '') || ')'
         || CASE WHEN k.contype = 'f' THEN ' REFERENCES ' || f.relname || ' (' || ${cols('k.confrelid', 'k.confkey')} || ')'
              || CASE k.confdeltype WHEN 'c' THEN ' ON DELETE CASCADE' ELSE '' END ELSE '' END
         || CASE WHEN k.convalidated THEN '' ELSE ' NOT VALID' END AS line
  FROM pg_constraint k JOIN pg_class c ON c.oid = k.conrelid LEFT JOIN pg_class f ON f.oid = k.confrelid
  WHERE c.relnamespace = current_schema()::regnamespace AND c.relname = ANY($1) AND k.contype <> 'n'`;

// Indexes that back no constraint; those that do are the constraints' own (and must be valid too).
const INDEXES_SQL = `
  SELECT c.relname || ' ' || CASE WHEN x.indisunique THEN 'UNIQUE ' ELSE '' END || 'INDEX ('
         || ${cols('x.indrelid', 'x.indkey::int2[]')} || ')'
         || CASE WHEN x.indisvalid AND x.indisready THEN '' ELSE ' INVALID' END AS line,
         EXISTS (SELECT 1 FROM pg_constraint k WHERE k.conindid = x.indexrelid) AS backs_constraint,
         x.indisvalid AND x.indisready AS valid, i.relname AS name
  FROM pg_index x JOIN pg_class c ON c.oid = x.indrelid JOIN pg_class i ON i.oid = x.indexrelid
  WHERE c.relnamespace = current_schema()::regnamespace AND c.relname = ANY($1)`;

async function lines(c: Querier, sql: string): Promise<string[]> {
  return (await c.query<{ line: string }>(sql, [TABLES])).rows.map((r) => r.line);
}

/** What differs from the schema this wirecagesrv made ("missing: ...", "unexpected: ..."); empty when nothing. */
export async function catalogProblems(c: Querier): Promise<string[]> {
  const problems: string[] = [];
  const columns = new Set(await lines(c, COLUMNS_SQL));
  for (const want of COLUMNS) if (!columns.delete(want)) problems.push(`missing column ${want}`);
  for (const extra of columns) problems.push(`unexpected column ${extra}`);
  const constraints = await lines(c, CONSTRAINTS_SQL);
  for (const want of CONSTRAINTS) if (!constraints.includes(want)) problems.push(`missing constraint ${want}`);
  for (const bad of constraints.filter((l) => l.endsWith(' NOT VALID'))) problems.push(`constraint not validated: ${bad}`);
  const indexes = (await c.query<{ line: string; backs_constraint: boolean; valid: boolean; name: string }>(INDEXES_SQL, [TABLES])).rows;
  for (const want of INDEXES) if (!indexes.some((i) => i.line === want)) problems.push(`missing index ${want}`);
  for (const bad of indexes.filter((i) => !i.valid)) problems.push(`index ${bad.name} is invalid`);
  return problems;
}
