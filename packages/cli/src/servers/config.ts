// ~/.config/wirecage/config.toml: the servers `wirecage add-server` knows,
// in the original tool's format (`version = 1`, then [servers.NAME] tables
// with api_url and token, and ca_file for a server whose certificate a
// private CA signed). It holds tokens, so it is written 0600, atomically.
import { readFileSync } from 'node:fs';
import { homedir } from 'node:os';
import { dirname, isAbsolute, join, resolve } from 'node:path';
import { writeSecretFileAtomic } from '@wirecage/wg-engine/config';
import { TomlError, parseToml, stringifyToml, type TomlTable } from './toml.js';
import { WirecageError } from '../errors.js';

export interface ServerEntry {
  apiUrl: string;
  token: string;
  /**
   * The CA certificate(s) (PEM) the server's TLS certificate must chain to, instead of the public
   * CAs: as written in config.toml (relative to its directory, as add-server --ca-file writes it).
   */
  caFile?: string;
}

export interface ServersConfig {
  file: string;
  servers: Map<string, ServerEntry>;
}

const NAME = /^[A-Za-z0-9_-]{1,32}$/;

export function isServerName(name: string): boolean {
  return NAME.test(name);
}

export function checkServerName(name: string): void {
  if (!isServerName(name)) throw new TomlError('server name', 0, `"${name}" is not valid: use 1 to 32 of A-Z a-z 0-9 _ -`);
}

export function configDir(): string {
  const xdg = process.env.XDG_CONFIG_HOME;
  return join(xdg && xdg.startsWith('/') ? xdg : join(homedir(), '.config'), 'wirecage');
}

export function configFile(): string {
  return join(configDir(), 'config.toml');
}

export function keyFileFor(name: string): string {
  checkServerName(name);
  return join(configDir(), 'keys', `${name}.key`);
}

/** The registration `run NAME` keeps, next to the key (lease-state.ts). */
export function leaseFileFor(name: string): string {
  checkServerName(name);
  return join(configDir(), 'keys', `${name}.lease.json`);
}

/** Where add-server --ca-file keeps its copy of the CA, as config.toml names it (relative to its directory). */
export function caFileEntryFor(name: string): string {
  checkServerName(name);
  return join('ca', `${name}.pem`);
}

/** A ca_file as written in config.toml, made absolute against the directory of that file. */
export function resolveCaFile(cfgFile: string, caFile: string): string {
  return isAbsolute(caFile) ? caFile : resolve(dirname(cfgFile), caFile);
}

export function checkApiUrl(url: string): string {
  let u: URL;
  try {
    u = new URL(url);
  } catch {
    throw new WirecageError(`${url}: not a URL (expected http://host:port or https://host:port)`);
  }
  if (u.protocol !== 'http:' && u.protocol !== 'https:') throw new WirecageError(`${url}: the API URL must start with http:// or https://`);
  if (u.search || u.hash || u.username || u.password)
    throw new WirecageError(`${url}: the API URL must not carry a query, fragment or credentials`);
  return url.replace(/\/+$/, '');
}

export function loadServers(file = configFile()): ServersConfig {
  let text: string;
  try {
    text = readFileSync(file, 'utf8');
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'ENOENT') return { file, servers: new Map() };
    throw new WirecageError(`cannot read ${file}: ${(err as NodeJS.ErrnoException).code ?? (err as Error).message}`);
  }
  const doc = parseToml(text, file);
  const lineOf = (re: RegExp) => Math.max(1, text.split('\n').findIndex((l) => re.test(l)) + 1);
  for (const key of Object.keys(doc)) {
    if (key !== 'version' && key !== 'servers')
      throw new TomlError(file, lineOf(new RegExp(`^\\s*\\[?\\s*"?${escapeRe(key)}`)), `unknown key ${key}`);
  }
  if (doc.version !== undefined && doc.version !== 1)
    throw new TomlError(file, lineOf(/^\s*version\s*=/), `version ${JSON.stringify(doc.version)} is not supported (only 1)`);
  const servers = new Map<string, ServerEntry>();
  const table = doc.servers ?? {};
  if (typeof table !== 'object') throw new TomlError(file, lineOf(/^\s*servers\s*=/), 'servers must be a table');
  for (const [name, entry] of Object.entries(table)) {
    const line = lineOf(new RegExp(`^\\s*\\[\\s*servers\\s*\\.\\s*"?${escapeRe(name)}"?\\s*\\]`));
    if (typeof entry !== 'object') throw new TomlError(file, line, `servers.${name} must be a table`);
    if (!isServerName(name)) throw new TomlError(file, line, `server name "${name}" is not valid: use 1 to 32 of A-Z a-z 0-9 _ -`);
    for (const k of Object.keys(entry))
      if (k !== 'api_url' && k !== 'token' && k !== 'ca_file') throw new TomlError(file, line, `servers.${name}: unknown key ${k}`);
    const { api_url: apiUrl, token, ca_file: caFile } = entry;
    if (typeof apiUrl !== 'string') throw new TomlError(file, line, `servers.${name}: api_url must be a string`);
    if (token !== undefined && typeof token !== 'string') throw new TomlError(file, line, `servers.${name}: token must be a string`);
    if (caFile !== undefined && (typeof caFile !== 'string' || caFile === ''))
      throw new TomlError(file, line, `servers.${name}: ca_file must be a file name`);
    servers.set(name, { apiUrl, token: token ?? '', ...(caFile !== undefined ? { caFile } : {}) });
  }
  return { file, servers };
}

export function saveServers(cfg: ServersConfig): void {
  const servers: TomlTable = {};
  for (const [name, s] of cfg.servers)
    servers[name] = { api_url: s.apiUrl, token: s.token, ...(s.caFile !== undefined ? { ca_file: s.caFile } : {}) };
  const doc: TomlTable = { version: 1 };
  if (cfg.servers.size) doc.servers = servers;
  writeSecretFileAtomic(cfg.file, stringifyToml(doc));
}

function escapeRe(s: string): string {
  return s.replace(/[.*+?^${}()|[\]\\]/g, '\\$&');
}
