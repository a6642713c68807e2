// The commands' tables (peers list, nodes): columns padded to their widest
// cell, two spaces apart, the last column unpadded.

export function printTable(rows: string[][]): void {
  const widths = rows[0]!.map((_, i) => Math.max(...rows.map((r) => r[i]!.length)));
  for (const r of rows) process.stdout.write(`${r.map((cell, i) => (i === r.length - 1 ? cell : cell.padEnd(widths[i]!))).join('  ')}\n`);
}

/** "2030-01-02 03:04:05Z" (UTC, to the second), or "-". */
export function utcSecond(iso: string | undefined): string {
  return iso ? iso.replace('T', ' ').replace(/\.\d+Z$/, 'Z') : '-';
}
