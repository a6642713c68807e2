// The subset of TOML that config.toml uses, and nothing more: `key = value`
// lines with basic strings (with escapes) or integers, and table headers
// with bare or quoted dotted keys. Anything else is refused with file:line,
// so a hand edit that this reader would misread never passes silently.
import { WirecageError } from '../errors.js';

export class TomlError extends WirecageError {
  override name = 'TomlError';
  constructor(
    readonly file: string,
    readonly line: number,
    reason: string,
  ) {
    super(`${file}:${line}: ${reason}`);
  }
}

export type TomlValue = string | number;
export interface TomlTable {
  [key: string]: TomlValue | TomlTable;
}

const BARE = /^[A-Za-z0-9_-]+$/;
const ESCAPES: Record<string, string> = { b: '\b', t: '\t', n: '\n', f: '\f', r: '\r', '"': '"', '\\': '\\' };

/** Reads one key (bare or "quoted") at `pos`; returns it and the position after it. */
function readKey(text: string, pos: number, fail: (why: string) => never): [string, number] {
  if (text[pos] === '"') return readString(text, pos, fail);
  const m = /^[A-Za-z0-9_-]+/.exec(text.slice(pos));
  if (!m) fail(`expected a key at column ${pos + 1}`);
  return [m[0], pos + m[0].length];
}

function readString(text: string, pos: number, fail: (why: string) => never): [string, number] {
  let out = '';
  let i = pos + 1;
  for (;;) {
    if (i >= text.length) fail('unterminated string');
    const c = text[i]!;
    if (c === '"') return [out, i + 1];
    if (c === '\\') {
      const e = text[i + 1];
      if (e !== undefined && e in ESCAPES) {
        out += ESCAPES[e];
        i += 2;
        continue;
      }
      const u = e === 'u' ? /^[0-9A-Fa-f]{4}/.exec(text.slice(i + 2)) : e === 'U' ? /^[0-9A-Fa-f]{8}/.exec(text.slice(i + 2)) : null;
      if (!u) fail(`invalid escape \\${e ?? ''} in a string`);
      const cp = parseInt(u[0], 16);
      if (cp > 0x10ffff || (cp >= 0xd800 && cp <= 0xdfff)) fail(`invalid Unicode escape \\${e}${u[0]}`);
      out += String.fromCodePoint(cp);
      i += 2 + u[0].length;
      continue;
    }
    const code = c.charCodeAt(0);
    if ((code < 0x20 && c !== '\t') || code === 0x7f) fail('control character in a string (use an escape)');
    out += c;
    i++;
  }
}

function skipSpace(text: string, pos: number): number {
  while (text[pos] === ' ' || text[pos] === '\t') pos++;
  return pos;
}

function expectEnd(text: string, pos: number, fail: (why: string) => never): void {
  pos = skipSpace(text, pos);
  if (pos < text.length && text[pos] !== '#') fail(`unexpected text after the value: ${JSON.stringify(text.slice(pos, pos + 20))}`);
}

function readDottedKey(text: string, pos: number, fail: (why: string) => never): [string[], number] {
  const keys: string[] = [];
  for (;;) {
    pos = skipSpace(text, pos);
    const [k, next] = readKey(text, pos, fail);
    keys.push(k);
    pos = skipSpace(text, next);
    if (text[pos] !== '.') return [keys, pos];
    pos++;
  }
}

export function parseToml(text: string, file: string): TomlTable {
  const root: TomlTable = {};
  const defined = new Set<TomlTable>();
  let current = root;
  const lines = text.split('\n');
  lines.forEach((raw, idx) => {
    const fail: (why: string) => never = (why) => {
      throw new TomlError(file, idx + 1, why);
    };
    const line = raw.endsWith('\r') ? raw.slice(0, -1) : raw;
    let pos = skipSpace(line, 0);
    if (pos === line.length || line[pos] === '#') return;
    if (line[pos] === '[') {
      if (line[pos + 1] === '[') fail('arrays of tables are not supported here');
      const [keys, end] = readDottedKey(line, pos + 1, fail);
      if (line[end] !== ']') fail('expected ] to close the table header');
      expectEnd(line, end + 1, fail);
      let t = root;
      for (const k of keys) {
        const v = t[k];
        if (v === undefined) t = t[k] = {};
        else if (typeof v === 'object') t = v;
        else fail(`${keys.join('.')}: ${k} is already a value, not a table`);
      }
      if (defined.has(t)) fail(`table [${keys.join('.')}] is defined twice`);
      defined.add(t);
      current = t;
      return;
    }
    const [keys, afterKey] = readDottedKey(line, pos, fail);
    if (keys.length !== 1) fail('dotted keys are not supported here; use a [table]');
    const key = keys[0]!;
    if (line[afterKey] !== '=') fail(`expected = after ${key}`);
    pos = skipSpace(line, afterKey + 1);
    let value: TomlValue;
    if (line[pos] === '"') {
      if (line.startsWith('"""', pos)) fail('multi-line strings are not supported here');
      [value, pos] = readString(line, pos, fail);
    } else {
      const m = /^[+-]?(0|[1-9](_?[0-9])*)(?=[ \t#]|$)/.exec(line.slice(pos));
      if (!m) fail(`${key}: only "strings" and integers are supported here`);
      value = Number(m[0].replace(/_/g, ''));
      if (!Number.isSafeInteger(value)) fail(`${key}: integer out of range`);
      pos += m[0].length;
    }
    expectEnd(line, pos, fail);
    if (key in current) fail(`${key} is defined twice`);
    current[key] = value;
  });
  return root;
}

export function formatKey(key: string): string {
  return BARE.test(key) ? key : formatString(key);
}

export function formatString(s: string): string {
  let out = '"';
  for (const c of s) {
    const code = c.codePointAt(0)!;
    if (c === '"' || c === '\\') out += `\\${c}`;
    else if (c === '\n') out += '\\n';
    else if (c === '\t') out += '\\t';
    else if (c === '\r') out += '\\r';
    else if (code < 0x20 || code === 0x7f) out += `\\u${code.toString(16).padStart(4, '0')}`;
    else out += c;
  }
  return `${out}"`;
}

/** Writes plain values first, then sub-tables as [a.b] headers, depth first. */
export function stringifyToml(root: TomlTable): string {
  const out: string[] = [];
  const walk = (t: TomlTable, path: string[]) => {
    const values = Object.entries(t).filter(([, v]) => typeof v !== 'object');
    const tables = Object.entries(t).filter(([, v]) => typeof v === 'object') as [string, TomlTable][];
    if (path.length && (values.length || tables.length === 0)) {
      if (out.length) out.push('');
      out.push(`[${path.map(formatKey).join('.')}]`);
    }
    for (const [k, v] of values) out.push(`${formatKey(k)} = ${typeof v === 'number' ? String(v) : formatString(v as string)}`);
    for (const [k, v] of tables) walk(v, [...path, k]);
  };
  walk(root, []);
  return `${out.join('\n')}\n`;
}
