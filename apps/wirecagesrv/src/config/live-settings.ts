// The settings a running server changes on reload, read again from the
// settings file (--config-file). Precedence is the start's: a flag wins over
// its environment variable, which wins over the file; a setting pinned by a
// flag or variable keeps its start value (a running process cannot read its
// argv or environment again), and one the file no longer names falls back to
// the flag's default, as a restart would. The values are held to the rules
// oclif holds the flags to (tests/server/reload-settings.test.ts gives both the
// same bad value, at start and on reload).
import { createHash } from 'node:crypto';
import { envName } from '../env.js';
import { DEFAULT_MAX_FLOWS, DEFAULT_MAX_FLOWS_PER_PEER } from '../nat/limits.js';
import { parseAllowDest } from '../nat/policy.js';
import { readSettings, SettingsFileError, type FileSetting } from './env-file.js';

export const LOG_LEVELS = ['error', 'warn', 'info', 'debug'] as const;
export type ServerLogLevel = (typeof LOG_LEVELS)[number];
export const DEFAULT_REGISTER_RATE = 10;

export interface LiveSettings {
  allowLan: boolean;
  allowDest: string[];
  logLevel: ServerLogLevel;
  maxFlows: number;
  maxFlowsPerPeer: number;
  registerRate: number;
}

type Parse<K extends keyof LiveSettings> = (text: string) => LiveSettings[K];

interface LiveFlag<K extends keyof LiveSettings> {
  key: K;
  default: LiveSettings[K];
  parse: Parse<K>;
}

const int =
  (min: number): Parse<'maxFlows'> =>
  (text) => {
    // oclif's Flags.integer: digits only, then the bound.
    if (!/^-?\d+$/.test(text)) throw new Error(`expected an integer but received: ${text}`);
    const n = Number(text);
    if (n < min) throw new Error(`expected an integer greater than or equal to ${min} but received: ${text}`);
    return n;
  };

/** The flags a reload applies, by name. */
export const LIVE_FLAGS: { [flag: string]: LiveFlag<keyof LiveSettings> } = {
  // oclif reads a boolean flag's variable as true for 1, true, y, yes (any case), false otherwise.
  'allow-lan': { key: 'allowLan', default: false, parse: (t) => ['1', 'true', 'y', 'yes'].includes(t.toLowerCase()) },
  'allow-dest': {
    key: 'allowDest',
    default: [],
    parse: (t) => {
      const list = t
        .split(',')
        .map((s) => s.trim())
        .filter((s) => s !== '');
      for (const d of list) parseAllowDest(d);
      return list;
    },
  },
  'log-level': {
    key: 'logLevel',
    default: 'info',
    parse: (t) => {
      if (!(LOG_LEVELS as readonly string[]).includes(t)) throw new Error(`expected one of ${LOG_LEVELS.join(', ')} but received: ${t}`);
      return t as ServerLogLevel;
    },
  },
  'max-flows': { key: 'maxFlows', default: DEFAULT_MAX_FLOWS, parse: int(1) },
  'max-flows-per-peer': { key: 'maxFlowsPerPeer', default: DEFAULT_MAX_FLOWS_PER_PEER, parse: int(1) },
  'register-rate': { key: 'registerRate', default: DEFAULT_REGISTER_RATE, parse: int(1) },
};

/** Where the settings of a running server come from, as stage 1 found them at start. */
export interface SettingsOrigin {
  file: string;
  /** The flags given on the command line or by their variable at start: the file does not change them. */
  pinned: Record<string, 'flag' | 'environment'>;
  /** The names the file may set (the flags of `up`). */
  flags: string[];
  /** A digest of each value the file held at start, to name the settings changed since that need a restart. */
  atStart: Record<string, string>;
  /** The line of each setting at start, for messages. */
  lines: Record<string, number>;
}

export const digest = (value: string): string => createHash('sha256').update(value).digest('hex');

/** The origin of a start's settings: the file read then, and what argv and the environment pinned. */
export function settingsOrigin(
  file: string,
  entries: Map<string, FileSetting>,
  pinned: SettingsOrigin['pinned'],
  flags: string[],
): SettingsOrigin {
  const each = <T>(fn: (s: FileSetting) => T) => Object.fromEntries([...entries].map(([f, s]) => [f, fn(s)]));
  return { file, pinned, flags, atStart: each((s) => digest(s.value)), lines: each((s) => s.line) };
}

/** What a reload of the file asks for: the live settings, and a sentence for each setting it cannot apply. */
export interface SettingsRead {
  next: LiveSettings;
  notes: string[];
}

/** Reads the settings file again; a SettingsFileError (file:line and name) when any of it is wrong. */
export function readLiveSettings(o: SettingsOrigin, start: LiveSettings): SettingsRead {
  const entries = readSettings(o.file, o.flags);
  const next = { ...start };
  const notes: string[] = [];
  for (const [flag, def] of Object.entries(LIVE_FLAGS)) {
    const s = entries.get(flag);
    const pin = o.pinned[flag];
    if (pin) {
      if (s)
        notes.push(
          `${envName(flag)} (${o.file}:${s.line}) is not applied: --${flag} is pinned by ${pin === 'flag' ? 'a flag' : `the environment variable ${envName(flag)}`}, which wins over the file`,
        );
      continue;
    }
    let value: LiveSettings[keyof LiveSettings] = def.default;
    if (s && s.value !== '') {
      try {
        value = def.parse(s.value);
      } catch (err) {
        throw new SettingsFileError(`${o.file}:${s.line}: ${envName(flag)}: ${(err as Error).message}`);
      }
    }
    (next as Record<string, unknown>)[def.key] = value;
  }
  for (const flag of new Set([...entries.keys(), ...Object.keys(o.atStart)])) {
    if (flag in LIVE_FLAGS) continue;
    const now = entries.get(flag);
    if ((now === undefined ? undefined : digest(now.value)) !== o.atStart[flag]) {
      notes.push(`${envName(flag)} changed in ${o.file} since the start: it is read at start only and needs a restart`);
    }
  }
  return { next, notes };
}

/** The live settings that differ between `a` and `b`, by flag name. */
export function changedSettings(a: LiveSettings, b: LiveSettings): string[] {
  return Object.entries(LIVE_FLAGS)
    .filter(([, d]) => JSON.stringify(a[d.key]) !== JSON.stringify(b[d.key]))
    .map(([flag]) => flag);
}
