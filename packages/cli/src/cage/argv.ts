// oclif drops the first `--` and reorders argv (TOOLCHAIN.md), so `wirecage
// run` splits its raw argv itself: wirecage's flags, then the command.
// Without `--`, the command starts at the first word that is not a flag or a
// flag's value, so `wirecage run -c x.conf curl -s URL` works too.

export function splitCommand(argv: string[], flagsWithValues: Set<string>): { flags: string[]; command: string[] } {
  const flags: string[] = [];
  for (let i = 0; i < argv.length; i++) {
    const a = argv[i]!;
    if (a === '--') return { flags, command: argv.slice(i + 1) };
    if (!a.startsWith('-') || a === '-') return { flags, command: argv.slice(i) };
    flags.push(a);
    if (!a.includes('=') && flagsWithValues.has(a) && i + 1 < argv.length) flags.push(argv[++i]!);
  }
  return { flags, command: [] };
}

/** The spellings (`--name`, `-c`) of the flags that take a value, from oclif's flag definitions. */
export function flagsWithValues(defs: Record<string, { type: string; char?: string }>): Set<string> {
  const out = new Set<string>();
  for (const [name, def] of Object.entries(defs)) {
    if (def.type !== 'option') continue;
    out.add(`--${name}`);
    if (def.char) out.add(`-${def.char}`);
  }
  return out;
}

/** `flags` (split as above) without the named flags and their values. */
export function withoutFlags(flags: string[], names: Set<string>, withValues: Set<string>): string[] {
  const out: string[] = [];
  for (let i = 0; i < flags.length; i++) {
    const a = flags[i]!;
    const name = a.split('=')[0]!;
    if (!names.has(name)) out.push(a);
    else if (!a.includes('=') && withValues.has(name)) i++;
  }
  return out;
}

/**
 * The argv oclif gets from bin/run.js. The earlier wirecage had no
 * subcommands (`wirecage --wg-public-key K ... -- CMD`): a command line that
 * starts with a flag and has a --wg-* flag before any `--` is a `run`.
 * `--help`, `--version` and every subcommand are left alone.
 */
export function topLevelArgv(argv: string[]): string[] {
  if (!argv[0]?.startsWith('-')) return argv;
  const end = argv.indexOf('--');
  const flags = end < 0 ? argv : argv.slice(0, end);
  return flags.some((a) => a.startsWith('--wg-')) ? ['run', ...argv] : argv;
}

/** Words as a POSIX shell reads them back (for hints the user may paste). */
export function shellLine(words: string[]): string {
  return words.map((w) => (/^[\w@%+=:,./-]+$/.test(w) ? w : `'${w.replace(/'/g, `'\\''`)}'`)).join(' ');
}
