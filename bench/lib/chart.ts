// bench/results/dataplane.svg: receiver throughput per test, one bar per
// pair, grouped by test, each bar labelled with its value and its ratio to
// the anchor. Plain SVG text, no dependencies.
import { TESTS } from './measure.js';
import { PAIR_TITLES } from './pairs.js';
import { ANCHOR, ratio, type BenchRun } from './results.js';
import type { PairName } from './options.js';

const COLORS: Record<PairName, string> = { 'wg-wg': '#8a8f98', 'cage-wg': '#2f6db5', 'cage-cage': '#e07b24' };

const esc = (s: string) => s.replace(/&/g, '&amp;').replace(/</g, '&lt;').replace(/>/g, '&gt;');

/** A round axis step giving about `target` ticks up to `max`. */
function niceStep(max: number, target = 5): number {
  const raw = max / target;
  const pow = 10 ** Math.floor(Math.log10(raw));
  for (const m of [1, 2, 2.5, 5, 10]) if (m * pow >= raw) return m * pow;
  return 10 * pow;
}

export function renderChart(run: BenchRun): string {
  const W = 860;
  const H = 480;
  const left = 64;
  const right = 20;
  const top = 92;
  const bottom = 40;
  const plotW = W - left - right;
  const plotH = H - top - bottom;
  const pairs = run.pairs;
  const anchor = pairs.find((p) => p.name === ANCHOR);
  const value = (name: PairName, test: string) => pairs.find((p) => p.name === name)?.transfers[test as 'tcp']?.bitsPerSecond;
  const all = pairs.flatMap((p) => TESTS.map((t) => (p.transfers[t.id]?.bitsPerSecond ?? 0) / 1e9));
  const max = Math.max(0.1, ...all) * 1.18;
  const step = niceStep(max);
  const yMax = Math.ceil(max / step) * step;
  const y = (v: number) => top + plotH - (v / yMax) * plotH;

  const out: string[] = [];
  out.push(`<svg xmlns="http://www.w3.org/2000/svg" width="${W}" height="${H}" viewBox="0 0 ${W} ${H}" font-family="DejaVu Sans, Arial, Helvetica, sans-serif">`);
  out.push(`<rect width="${W}" height="${H}" fill="#ffffff"/>`);
  out.push(
    `<text x="${left}" y="26" font-size="16" font-weight="bold" fill="#222">wirecage data plane: throughput at the receiver, Gbit/s (× = ratio to the anchor)</text>`,
  );
  out.push(
    `<text x="${left}" y="46" font-size="12" fill="#555">${esc(`median of ${run.options.rounds} × ${run.options.duration} s iperf3 runs, MTU 1420, ${run.machine.nproc} CPUs (load ${run.machine.loadStart[0]!.toFixed(2)} at start), ${run.machine.kernel}, Node ${run.machine.node}, ${run.machine.date.slice(0, 10)}`)}</text>`,
  );
  // Legend.
  let lx = left;
  for (const p of pairs) {
    out.push(`<rect x="${lx}" y="60" width="14" height="14" fill="${COLORS[p.name]}"/>`);
    const label = PAIR_TITLES[p.name] + (p.name === ANCHOR ? ' (anchor)' : '');
    out.push(`<text x="${lx + 20}" y="72" font-size="13" fill="#222">${esc(label)}</text>`);
    lx += 34 + label.length * 7.4;
  }
  // Grid and axis.
  for (let v = 0; v <= yMax + 1e-9; v += step) {
    const yy = y(v).toFixed(1);
    out.push(`<line x1="${left}" x2="${W - right}" y1="${yy}" y2="${yy}" stroke="${v === 0 ? '#444' : '#e3e3e3'}" stroke-width="1"/>`);
    out.push(`<text x="${left - 8}" y="${(y(v) + 4).toFixed(1)}" font-size="12" fill="#444" text-anchor="end">${Number(v.toFixed(2))}</text>`);
  }
  out.push(`<text x="16" y="${top + plotH / 2}" font-size="12" fill="#444" text-anchor="middle" transform="rotate(-90 16 ${top + plotH / 2})">Gbit/s</text>`);
  // Bars.
  const groupW = plotW / TESTS.length;
  const barW = Math.min(56, (groupW * 0.78) / Math.max(1, pairs.length));
  TESTS.forEach((t, g) => {
    const gx = left + g * groupW + (groupW - barW * pairs.length) / 2;
    pairs.forEach((p, i) => {
      const bps = value(p.name, t.id);
      const x = gx + i * barW;
      const cx = (x + barW / 2).toFixed(1);
      if (bps === undefined) {
        out.push(`<text x="${cx}" y="${y(0) - 6}" font-size="11" fill="#999" text-anchor="middle">n/a</text>`);
        return;
      }
      const v = bps / 1e9;
      out.push(`<rect x="${(x + 2).toFixed(1)}" y="${y(v).toFixed(1)}" width="${(barW - 4).toFixed(1)}" height="${(y(0) - y(v)).toFixed(1)}" fill="${COLORS[p.name]}"/>`);
      out.push(`<text x="${cx}" y="${(y(v) - 6).toFixed(1)}" font-size="12" fill="#222" text-anchor="middle">${v.toFixed(2)}</text>`);
      if (p.name !== ANCHOR) {
        const r = ratio(bps, anchor?.transfers[t.id]?.bitsPerSecond);
        if (r !== null) out.push(`<text x="${cx}" y="${(y(v) - 21).toFixed(1)}" font-size="11" font-weight="bold" fill="${COLORS[p.name]}" text-anchor="middle">${r.toFixed(2)}×</text>`);
      }
    });
    out.push(`<text x="${(left + g * groupW + groupW / 2).toFixed(1)}" y="${H - bottom + 22}" font-size="13" fill="#222" text-anchor="middle">${esc(t.title)}</text>`);
  });
  out.push('</svg>', '');
  return out.join('\n');
}
