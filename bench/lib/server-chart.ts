// bench/results/server.svg: throughput through each server, one group per
// direction, each bar labelled with its Gbit/s and its ratio to the anchor.
// The same look as chart.ts (whose renderer is cut for the data-plane pairs).
import { ratio } from './results.js';
import { ANCHOR_SETUP, SETUPS, SETUP_TITLES, type ServerSetup } from './server-labs.js';
import type { ServerTestId } from './server-measure.js';
import { bps, type ServerBenchRun } from './server-report.js';

const COLORS: Record<ServerSetup, string> = { userspace: '#2f6db5', kernel: '#e07b24', 'wg-go': '#8a8f98' };
const GROUPS: { id: ServerTestId; title: string }[] = [
  { id: 'tcp', title: 'TCP, cage → lab host' },
  { id: 'tcp-r', title: 'TCP, lab host → cage (-R)' },
];

const esc = (s: string) => s.replace(/&/g, '&amp;').replace(/</g, '&lt;').replace(/>/g, '&gt;');

function niceStep(max: number): number {
  const raw = max / 5;
  const pow = 10 ** Math.floor(Math.log10(raw));
  return [1, 2, 2.5, 5, 10].map((m) => m * pow).find((s) => s >= raw)!;
}

export function renderServerChart(run: ServerBenchRun): string {
  const [W, H, left, right, top, bottom] = [760, 420, 64, 20, 92, 40];
  const plotW = W - left - right;
  const plotH = H - top - bottom;
  const all = GROUPS.flatMap((g) => SETUPS.map((s) => (bps(run, s, g.id) ?? 0) / 1e9));
  const max = Math.max(0.1, ...all) * 1.18;
  const step = niceStep(max);
  const yMax = Math.ceil(max / step) * step;
  const y = (v: number) => top + plotH - (v / yMax) * plotH;
  const m = run.machine;
  const out: string[] = [
    `<svg xmlns="http://www.w3.org/2000/svg" width="${W}" height="${H}" viewBox="0 0 ${W} ${H}" font-family="DejaVu Sans, Arial, Helvetica, sans-serif">`,
    `<rect width="${W}" height="${H}" fill="#ffffff"/>`,
    `<text x="${left}" y="26" font-size="16" font-weight="bold" fill="#222">cage → server → lab host: Gbit/s (× = ratio to the anchor)</text>`,
    `<text x="${left}" y="46" font-size="12" fill="#555">${esc(`median of ${run.rounds} × ${run.duration} s iperf3 runs, MTU 1420, ${m.nproc} CPUs (load ${m.loadStart[0]!.toFixed(2)} at start), ${m.kernel}, ${m.date.slice(0, 10)}`)}</text>`,
  ];
  let lx = left;
  for (const s of SETUPS) {
    const label = SETUP_TITLES[s] + (s === ANCHOR_SETUP ? ' (anchor)' : '');
    out.push(`<rect x="${lx.toFixed(1)}" y="60" width="14" height="14" fill="${COLORS[s]}"/>`, `<text x="${(lx + 20).toFixed(1)}" y="72" font-size="12" fill="#222">${esc(label)}</text>`);
    lx += 34 + label.length * 6.6;
  }
  for (let v = 0; v <= yMax + 1e-9; v += step) {
    const yy = y(v).toFixed(1);
    out.push(`<line x1="${left}" x2="${W - right}" y1="${yy}" y2="${yy}" stroke="${v === 0 ? '#444' : '#e3e3e3'}" stroke-width="1"/>`);
    out.push(`<text x="${left - 8}" y="${(y(v) + 4).toFixed(1)}" font-size="12" fill="#444" text-anchor="end">${Number(v.toFixed(2))}</text>`);
  }
  const groupW = plotW / GROUPS.length;
  const barW = Math.min(64, (groupW * 0.7) / SETUPS.length);
  GROUPS.forEach((g, gi) => {
    const gx = left + gi * groupW + (groupW - barW * SETUPS.length) / 2;
    SETUPS.forEach((s, i) => {
      const x = gx + i * barW;
      const cx = (x + barW / 2).toFixed(1);
      const value = bps(run, s, g.id);
      if (value === undefined) {
        out.push(`<text x="${cx}" y="${y(0) - 6}" font-size="11" fill="#999" text-anchor="middle">n/a</text>`);
        return;
      }
      const v = value / 1e9;
      out.push(`<rect x="${(x + 3).toFixed(1)}" y="${y(v).toFixed(1)}" width="${(barW - 6).toFixed(1)}" height="${(y(0) - y(v)).toFixed(1)}" fill="${COLORS[s]}"/>`);
      out.push(`<text x="${cx}" y="${(y(v) - 6).toFixed(1)}" font-size="12" fill="#222" text-anchor="middle">${v.toFixed(2)}</text>`);
      const r = s === ANCHOR_SETUP ? null : ratio(value, bps(run, ANCHOR_SETUP, g.id));
      if (r !== null) out.push(`<text x="${cx}" y="${(y(v) - 21).toFixed(1)}" font-size="11" font-weight="bold" fill="${COLORS[s]}" text-anchor="middle">${r.toFixed(2)}×</text>`);
    });
    out.push(`<text x="${(left + gi * groupW + groupW / 2).toFixed(1)}" y="${H - bottom + 22}" font-size="13" fill="#222" text-anchor="middle">${esc(g.title)}</text>`);
  });
  out.push('</svg>', '');
  return out.join('\n');
}
