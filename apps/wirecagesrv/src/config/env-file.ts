// The settings file (--config-file): WIRECAGESRV_<FLAG>=value lines, the
// format of a systemd EnvironmentFile, so one file serves both `up
// --config-file` and a unit's EnvironmentFile= (which then names itself with
// WIRECAGESRV_CONFIG_FILE, and reloads pick up its changes). Comments (# or ;), blank
// lines, and a value in single quotes (literal) or double quotes (\" \\ \$
// \` escapes) are accepted; anything else (a line continuation, text after a
// closing quote, a name that is no flag of `up`) is refused with file:line,
// because a setting silently misread is worse than a server that says why it
// will not start or reload.
import { readFileSync } from 'node:fs';
import { resolve } from 'node:path';
import { ENV_PREFIX } from '../env.js';

/** One setting of the file: the flag it sets, its value, and where it was written. */
export interface FileSetting {
  flag: string;
  value: string;
  line: number;
}

export class SettingsFileError extends Error {
  override name = 'SettingsFileError';
}

/** The variables a file may set that are no flag (the server key given as a value). */
const NOT_FLAGS = ['private-key-b64'];

/**
 * The settings of `text` (read from `file`), by flag name; a name set twice keeps its last value,
 * as systemd does. `flags` are the names the file may set (the flags of `up`).
 */
export function parseSettings(text: string, file: string, flags: readonly string[]): Map<string, FileSetting> {
  const out = new Map<string, FileSetting>();
  const lines = text.split('\n');
  for (let i = 0; i < lines.length; i++) {
    const where = `${file}:${i + 1}`;
    const line = lines[i]!.replace(/\r$/, '').trim();
    if (line === '' || line.startsWith('#') || line.startsWith(';')) continue;
    const eq = line.indexOf('=');
    if (eq < 0) throw new SettingsFileError(`${where}: not NAME=value: ${JSON.stringify(line.slice(0, 40))}`);
    const name = line.slice(0, eq).trim();
    if (!/^[A-Za-z_][A-Za-z0-9_]*$/.test(name)) throw new SettingsFileError(`${where}: ${JSON.stringify(name)} is not a variable name`);
    const flag = flagOf(name);
    if (flag === undefined || !(flags.includes(flag) || NOT_FLAGS.includes(flag))) {
      throw new SettingsFileError(
        `${where}: ${name} is no setting of wirecagesrv up (each is ${ENV_PREFIX}<FLAG>, e.g. ${ENV_PREFIX}ALLOW_DEST)`,
      );
    }
    let value: string;
    try {
      value = unquote(line.slice(eq + 1).trim());
    } catch (err) {
      throw new SettingsFileError(`${where}: ${name}: ${(err as Error).message}`);
    }
    // A unit's EnvironmentFile= that is also the settings file names itself, so that systemd's
    // environment tells `up` where it is; naming another file would be a chain nobody follows.
    if (flag === 'config-file') {
      if (resolve(value) === resolve(file)) continue;
      throw new SettingsFileError(`${where}: ${name}: a settings file can name only itself, not ${value}`);
    }
    out.set(flag, { flag, value, line: i + 1 });
  }
  return out;
}

/** The file's settings; a file that cannot be read is a SettingsFileError naming it. */
export function readSettings(file: string, flags: readonly string[]): Map<string, FileSetting> {
  let text: string;
  try {
    text = readFileSync(file, 'utf8');
  } catch (err) {
    throw new SettingsFileError(`cannot read the settings file ${file} (--config-file): ${(err as Error).message}`);
  }
  return parseSettings(text, file, flags);
}

/** WIRECAGESRV_ALLOW_DEST -> allow-dest; undefined for a name without the prefix. */
export function flagOf(name: string): string | undefined {
  if (!name.startsWith(ENV_PREFIX) || name.length === ENV_PREFIX.length) return undefined;
  return name.slice(ENV_PREFIX.length).toLowerCase().replace(/_/g, '-');
}

function unquote(raw: string): string {
  if (raw.endsWith('\\')) throw new Error('a line continuation (a trailing backslash) is not accepted: write the value on one line');
  const q = raw[0];
  if (q !== '"' && q !== "'") {
    if (/["'\\]/.test(raw)) throw new Error('a quote or backslash inside an unquoted value: quote the whole value');
    return raw;
  }
  let out = '';
  for (let i = 1; i < raw.length; i++) {
    const c = raw[i]!;
    if (c === q) {
      if (raw.slice(i + 1).trim() !== '') throw new Error(`text after the closing quote: ${JSON.stringify(raw.slice(i + 1))}`);
      return out;
    }
    if (c === '\\' && q === '"') {
      const n = raw[++i];
      if (n === undefined || !'"\\$`'.includes(n))
        throw new Error(`the escape \\${n ?? ''} is not accepted in double quotes (only \\" \\\\ \\$ \\\`)`);
      out += n;
      continue;
    }
    out += c;
  }
  throw new Error(`no closing ${q}`);
}
