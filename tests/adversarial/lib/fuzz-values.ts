// Random values for the API fuzz: JSON of every shape (with number literals
// JSON.stringify cannot write), unicode text, and field values that a
// validator of wirecagesrv must refuse. Each "bad" generator checks its result
// against the rule the server applies and draws again when chance made it
// valid, so a case's expected status never depends on luck.
import type { Prng } from './prng.js';

/** A JSON number written exactly as given ("1e400", "-0", "2e4"). */
export class RawNumber {
  constructor(readonly text: string) {}
}

export type JsonLike = null | boolean | number | string | RawNumber | JsonLike[] | { [k: string]: JsonLike };

export function toJsonText(v: JsonLike): string {
  if (v instanceof RawNumber) return v.text;
  if (Array.isArray(v)) return `[${v.map(toJsonText).join(',')}]`;
  if (v !== null && typeof v === 'object')
    return `{${Object.entries(v)
      .map(([k, x]) => `${JSON.stringify(k)}:${toJsonText(x)}`)
      .join(',')}}`;
  return JSON.stringify(v);
}

/** Text as a header value can carry it: no control characters (the parser refuses those, which is another case). */
// eslint-disable-next-line no-control-regex -- control characters are what it removes
export const headerSafe = (s: string): string => s.replace(/[\x00-\x08\x0a-\x1f\x7f]/g, '');

/** Every byte of the UTF-8 form percent-encoded but unreserved ASCII (lone surrogates too, which encodeURIComponent refuses). */
export function pctEncode(s: string): string {
  return [...Buffer.from(s, 'utf8')]
    .map((b) =>
      /[A-Za-z0-9_.~-]/.test(String.fromCharCode(b)) ? String.fromCharCode(b) : `%${b.toString(16).padStart(2, '0').toUpperCase()}`,
    )
    .join('');
}

/** Code point ranges that break naive text handling. */
const UNICODE_RANGES: [number, number][] = [
  [0x20, 0x7e], // ASCII
  [0x00, 0x1f], // controls (NUL included)
  [0x80, 0xff], // Latin-1
  [0x300, 0x36f], // combining marks
  [0x200b, 0x200f], // zero-width, direction marks
  [0x202a, 0x202e], // bidi overrides
  [0x2028, 0x2029], // line and paragraph separators
  [0xfeff, 0xfeff], // BOM
  [0xff01, 0xff5e], // fullwidth ASCII
  [0x4e00, 0x4fff], // CJK
  [0xd800, 0xdfff], // lone surrogates
  [0x1f300, 0x1f6ff], // emoji (astral)
  [0x10fff0, 0x10ffff], // the last planes
];

export function unicodeText(r: Prng, maxLen = 24): string {
  const n = r.int(0, maxLen);
  let s = '';
  for (let i = 0; i < n; i++) {
    const [lo, hi] = r.pick(UNICODE_RANGES);
    s += String.fromCodePoint(r.int(lo, hi));
  }
  return s;
}

/** Numbers, as JSON writes them or as only a literal can: huge, tiny, negative zero, beyond 2^53. */
export function jsonNumber(r: Prng): number | RawNumber {
  return r.pick<() => number | RawNumber>([
    () => r.int(-1000, 70000),
    () => r.next() * 1e6 - 5e5,
    () => Number.MAX_SAFE_INTEGER + r.int(1, 1000),
    () => Number.MAX_VALUE,
    () => Number.MIN_VALUE,
    () => new RawNumber('1e400'),
    () => new RawNumber('-1e400'),
    () => new RawNumber('-0'),
    () => new RawNumber(`${'9'.repeat(r.int(20, 400))}`),
    () => new RawNumber(`0.${'0'.repeat(r.int(300, 400))}1`),
    () => new RawNumber(`${r.int(1, 9)}e${r.int(-400, 400)}`),
    () => -r.int(1, 2 ** 31),
  ])();
}

const KEYS = [
  'token',
  'client_public_key',
  'protocol',
  'public_port',
  'target_port',
  '__proto__',
  'constructor',
  'prototype',
  'toString',
  '',
  ' ',
  'a',
];

export function jsonValue(r: Prng, depth = 0): JsonLike {
  const kind =
    depth >= 4
      ? r.pick(['null', 'bool', 'number', 'string'] as const)
      : r.pick(['null', 'bool', 'number', 'string', 'string', 'array', 'object'] as const);
  switch (kind) {
    case 'null':
      return null;
    case 'bool':
      return r.chance(0.5);
    case 'number':
      return jsonNumber(r);
    case 'string':
      return r.chance(0.1) ? 'x'.repeat(r.int(100, 4000)) : unicodeText(r);
    case 'array':
      return Array.from({ length: r.int(0, 5) }, () => jsonValue(r, depth + 1));
    case 'object':
      return jsonObject(r, depth + 1);
  }
}

export function jsonObject(r: Prng, depth = 0): { [k: string]: JsonLike } {
  const o: { [k: string]: JsonLike } = {};
  for (let i = r.int(0, 5); i > 0; i--) o[r.chance(0.5) ? r.pick(KEYS) : unicodeText(r, 8)] = jsonValue(r, depth);
  return o;
}

/** Nested 2000-4000 deep: a parser that recurses must not fall over. */
export function deepJson(r: Prng): string {
  const n = r.int(2000, 4000);
  return r.chance(0.5) ? `${'['.repeat(n)}${']'.repeat(n)}` : `${'{"a":'.repeat(n)}1${'}'.repeat(n)}`;
}

// --- the server's rules, as the validators state them ---

const BASE64_KEY = /^[A-Za-z0-9+/]{42}[AEIMQUYcgkosw048]=$/;
/** parseKeyBase64: 44 base64 characters of 32 bytes, after trimming. */
export const isKeyText = (v: unknown): boolean => typeof v === 'string' && BASE64_KEY.test(v.trim());
/** A port field: a whole number from 1 to 65535. */
export const isPort = (v: unknown): boolean => typeof v === 'number' && Number.isInteger(v) && v >= 1 && v <= 65535;
export const isProtocol = (v: unknown): boolean => v === 'tcp' || v === 'udp';
/** body.ts isJson. */
export const isJsonType = (ct: string | undefined): boolean => (ct ?? '').split(';')[0]!.trim().toLowerCase() === 'application/json';

/** The value a JSON literal parses to (the server sees that, not what we wrote). */
const parsed = (v: JsonLike): unknown => JSON.parse(toJsonText(v));

function until<T>(r: Prng, make: () => T, bad: (v: T) => boolean): T {
  for (let i = 0; i < 100; i++) {
    const v = make();
    if (bad(v)) return v;
  }
  throw new Error(`no bad value drawn in 100 tries (seed ${r.seed})`);
}

/** A random valid key (any 32 bytes are a key to the format check). */
export const keyText = (r: Prng): string => r.bytes(32).toString('base64');

/** The X25519 points of small order (libsodium's list), little-endian: keys no handshake can ever complete with. */
const LOW_ORDER_HEX = [
  '0000000000000000000000000000000000000000000000000000000000000000',
  '0100000000000000000000000000000000000000000000000000000000000000',
  'e0eb7a7c3b41b8ae1656e3faf19fc46ada098deb9c32b1fd866205165f49b800',
  '5f9c95bca3508c24b1d0b1559c83ef5b04445cc4581c8e86d8224eddd09f1157',
  'ecffffffffffffffffffffffffffffffffffffffffffffffffffffffffffff7f',
  'edffffffffffffffffffffffffffffffffffffffffffffffffffffffffffff7f',
  'eeffffffffffffffffffffffffffffffffffffffffffffffffffffffffffff7f',
];

/** A low-order point, with the top bit (which X25519 ignores) set or not. */
export function lowOrderKey(r: Prng): string {
  const b = Buffer.from(r.pick(LOW_ORDER_HEX), 'hex');
  if (r.chance(0.5)) b[31]! |= 0x80;
  return b.toString('base64');
}

/** A client_public_key the format check refuses (400). */
export function badKey(r: Prng): JsonLike {
  const good = keyText(r);
  return until<JsonLike>(
    r,
    () =>
      r.pick<() => JsonLike>([
        () => r.bytes(r.int(0, 64)).toString('base64'),
        () => `${good.slice(0, 42)}${r.pick(['B', 'C', 'D', 'Z', 'z', '1', '+', '/'])}=`,
        () => good.slice(0, 43),
        () => `${good.slice(0, 43)}${r.pick(['A', '==', '=='.repeat(2), '\u0000', '.'])}`,
        () => good.replace(/[+/]/g, (c) => (c === '+' ? '-' : '_')).replace(/^./, '-'),
        () => r.bytes(32).toString('hex'),
        () => `${good.slice(0, 20)}${r.pick([' ', '\t', '\u200b', '\n'])}${good.slice(20, 43)}`,
        () => `${good}${unicodeText(r, 3)}x`,
        () => `\u200b${good}`,
        () => good.replace(/[A-Za-z]/, (c) => String.fromCodePoint(c.charCodeAt(0) + 0xfee0)),
        () => '',
        () => ' '.repeat(r.int(1, 50)),
        () => 'A'.repeat(r.int(1, 8000)),
        () => unicodeText(r, 44),
        () => jsonNumber(r),
        () => r.pick<JsonLike>([null, true, false, [], {}, [good], { key: good }]),
      ])(),
    (v) => !isKeyText(parsed(v)),
  );
}

/** A port field the validator refuses (400). */
export function badPort(r: Prng): JsonLike {
  return until<JsonLike>(
    r,
    () =>
      r.pick<() => JsonLike>([
        () => r.pick([0, -1, 65536, 70000, 1.5, 20000.5, -20000]),
        () => jsonNumber(r),
        () => String(r.int(1, 65535)),
        () => r.pick<JsonLike>([null, true, false, [], {}, [20000], { port: 20000 }, '']),
        () => unicodeText(r, 6),
      ])(),
    (v) => !isPort(parsed(v)),
  );
}

/** A public_port a new forward cannot have (400): as badPort, but 0 asks the server to choose one. */
export function badPublicPort(r: Prng): JsonLike {
  return until(
    r,
    () => badPort(r),
    (v) => parsed(v) !== 0,
  );
}

/** A protocol field the validator refuses (400). */
export function badProtocol(r: Prng): JsonLike {
  return until<JsonLike>(
    r,
    () =>
      r.pick<() => JsonLike>([
        () => r.pick(['TCP', 'UDP', 'Tcp', 'tcp ', ' udp', 'icmp', 'sctp', '', 'tcp\u0000', 'ｔｃｐ', 'tcp,udp']),
        () => r.pick<JsonLike>([6, 17, null, true, ['tcp'], { tcp: true }]),
        () => unicodeText(r, 5),
      ])(),
    (v) => !isProtocol(parsed(v)),
  );
}

/** A port the validator accepts, sometimes written in a way a naive check would not take (2e4, 20000.0). */
export function portLiteral(r: Prng, port: number): JsonLike {
  if (!r.chance(0.2)) return port;
  return r.pick([new RawNumber(`${port}.0`), new RawNumber(`${port}.00000000000000000001`), new RawNumber(`${port / 10}e1`)]);
}

/** A Content-Type that is not JSON to the server (415). */
export function badContentType(r: Prng): string | undefined {
  return until<string | undefined>(
    r,
    () =>
      r.pick([
        undefined,
        'text/plain',
        'application/x-www-form-urlencoded',
        'multipart/form-data; boundary=xyz',
        'application/jsonp',
        'application/json-seq',
        'application/json, text/plain',
        'application/ld+json',
        'text/json',
        'json',
        '*/*',
        'application/javascript',
        'application/octet-stream',
        'application/json\u00a0',
        r.bytes(r.int(1, 20)).toString('base64'),
      ]),
    (v) => !isJsonType(v),
  );
}

/** A Content-Type the server takes as JSON. */
export function jsonContentType(r: Prng): string {
  return r.pick([
    'application/json',
    'application/json',
    'application/json; charset=utf-8',
    'APPLICATION/JSON',
    'application/json;charset=UTF-16',
    ' application/json ',
  ]);
}

/** Text that is not JSON at all, or JSON that is not an object; both get 400. */
export function notJsonObject(r: Prng): Buffer {
  return until<Buffer>(
    r,
    () =>
      r.pick<() => Buffer>([
        () => Buffer.from(toJsonText(jsonObject(r)).slice(0, -r.int(1, 5))), // truncated JSON
        () => r.bytes(r.int(1, 200)),
        () => Buffer.from(unicodeText(r, 60)),
        () =>
          Buffer.from(
            toJsonText(
              r.pick<() => JsonLike>([() => jsonNumber(r), () => unicodeText(r), () => [jsonValue(r)], () => null, () => r.chance(0.5)])(),
            ),
          ),
        () => Buffer.from(deepJson(r)).subarray(0, r.chance(0.5) ? undefined : 5000),
        () =>
          Buffer.from(
            r.pick([
              '',
              ' ',
              'null',
              '{',
              '}',
              '{"a":1,}',
              "{'token':'x'}",
              '{"a":1}{"b":2}',
              'NaN',
              'Infinity',
              '{"a":undefined}',
              '\ufeff{}',
              '[]',
            ]),
          ),
        () => Buffer.concat([Buffer.from([0xef, 0xbb, 0xbf]), Buffer.from('{}')]),
        () => Buffer.from(`{"token":"${'\\u'.repeat(1)}d800x"}`),
        () => Buffer.from('{"a":"\\x41"}'),
      ])(),
    (b) => {
      try {
        const v: unknown = JSON.parse(b.toString('utf8'));
        return v === null || typeof v !== 'object' || Array.isArray(v);
      } catch {
        return true;
      }
    },
  );
}

/** A string that is not `avoid` (nor `avoid` with different spacing). */
export function wrongToken(r: Prng, avoid: readonly string[]): string {
  return until(
    r,
    () =>
      r.pick<() => string>([
        () => r.bytes(r.int(1, 48)).toString('base64url'),
        () => avoid[0]!.slice(0, -1),
        () => `${avoid[0]!}x`,
        () => avoid[0]!.toUpperCase(),
        () => `${avoid[0]!.slice(0, 5)}${'0'.repeat(r.int(1, 40))}`,
        () => 'x'.repeat(r.int(1, 6000)),
        () => headerSafe(unicodeText(r, 20)).replace(/\s/g, '') || 'a',
      ])(),
    (t) => !avoid.includes(t.trim()),
  );
}
