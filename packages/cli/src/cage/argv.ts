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
