// The engine's logging seam. Nothing on the packet path logs above debug, and
// no key material is ever passed to a logger: peers are named by a short
// prefix of their *public* key.

export type LogLevel = 'silent' | 'error' | 'warn' | 'info' | 'debug';

/** `text`: `2026-01-02T03:04:05.678Z name level: msg k=v`; `json`: one object per line, for journald/Loki/jq. */
export type LogFormat = 'text' | 'json';
export const LOG_FORMATS: readonly LogFormat[] = ['text', 'json'];

/** Structured detail next to a message: names, counts, addresses. Never keys or tokens. */
export type LogFields = Record<string, string | number | boolean | null>;

export interface Logger {
  error(msg: string, fields?: LogFields): void;
  warn(msg: string, fields?: LogFields): void;
  info(msg: string, fields?: LogFields): void;
  debug(msg: string, fields?: LogFields): void;
}

const ORDER: Record<LogLevel, number> = { silent: 0, error: 1, warn: 2, info: 3, debug: 4 };

export const silentLogger: Logger = { error() {}, warn() {}, info() {}, debug() {} };

export interface LoggerOptions {
  format?: LogFormat;
  /** The program, first after the timestamp in text lines and `name` in JSON ones. */
  name?: string;
  /** Where whole lines go (no newline); default stderr. */
  sink?: (line: string) => void;
  /** For tests. */
  now?: () => Date;
}

type Sink = (line: string) => void;
const stderr: Sink = (l) => process.stderr.write(l + '\n');

/**
 * A logger that writes lines at or above level. With options it formats whole
 * records (timestamp first); with a bare sink function it hands the sink
 * `level: msg` for the sink to decorate (in-process collectors, tests).
 */
export function createLogger(level: LogLevel, sinkOrOptions: Sink | LoggerOptions = {}): Logger {
  const format = typeof sinkOrOptions === 'function' ? bare(sinkOrOptions) : formatter(sinkOrOptions);
  const at = (l: Exclude<LogLevel, 'silent'>) => (ORDER[l] <= ORDER[level] ? (m: string, f?: LogFields) => format(l, m, f) : () => {});
  return { error: at('error'), warn: at('warn'), info: at('info'), debug: at('debug') };
}

/** Checks a --log-format value; the error names the accepted ones. */
export function parseLogFormat(text: string): LogFormat {
  if ((LOG_FORMATS as readonly string[]).includes(text)) return text as LogFormat;
  throw new Error(`log format must be one of ${LOG_FORMATS.join(', ')}, not "${text}"`);
}

type Format = (level: string, msg: string, fields?: LogFields) => void;

function bare(sink: Sink): Format {
  return (level, msg, fields) => sink(`${level}: ${msg}${textFields(fields)}`);
}

function formatter(o: LoggerOptions): Format {
  const sink = o.sink ?? stderr;
  const now = o.now ?? (() => new Date());
  if (o.format === 'json') {
    const name = o.name === undefined ? {} : { name: o.name };
    // time, level and msg come first, and a field of the same name cannot replace them.
    return (level, msg, fields) => sink(JSON.stringify({ time: now().toISOString(), level, ...name, msg, ...extra(fields) }));
  }
  const name = o.name === undefined ? '' : `${o.name} `;
  return (level, msg, fields) => sink(`${now().toISOString()} ${name}${level}: ${oneLine(msg)}${textFields(fields)}`);
}

const RESERVED = new Set(['time', 'level', 'name', 'msg']);

function extra(fields?: LogFields): LogFields {
  if (!fields) return {};
  const out: LogFields = {};
  for (const [k, v] of Object.entries(fields)) out[RESERVED.has(k) ? `field_${k}` : k] = v;
  return out;
}

/** A message with a newline in it would forge a second record in a text log. */
function oneLine(s: string): string {
  return s.replace(/\r?\n/g, '\\n');
}

function textFields(fields?: LogFields): string {
  if (!fields) return '';
  let out = '';
  for (const [k, v] of Object.entries(fields)) {
    const s = String(v);
    out += ` ${k}=${/^[^\s"=]*$/.test(s) && s !== '' ? s : JSON.stringify(s)}`;
  }
  return out;
}
