// The grouped bar chart both bench charts draw (chart.ts for the data-plane
// pairs, server-chart.ts for the servers): Gbit/s per group, one bar per
// series, each labelled with its value and, but for the anchor's, its ratio
// to the anchor's bar in the same group. Plain SVG text, no dependencies.
import { ratio } from './results.js';

export interface BarSeries {
  label: string;
  color: string;
  /** The series every other one is compared with; at most one. */
  anchor: boolean;
}

export interface BarChart {
  width: number;
  height: number;
  title: string;
  subtitle: string;
  /** Left-side axis caption, if any. */
  yLabel?: string;
  series: BarSeries[];
  groups: string[];
  /** Bits per second of series `s` in group `g`; undefined draws "n/a". */
  bps(g: number, s: number): number | undefined;
  legend: { fontSize: number; charWidth: number };
  /** Bars are at most `maxWidth` wide and fill `fill` of a group; `gap` px stay free on each side of one. */
  bars: { maxWidth: number; fill: number; gap: number };
}

const esc = (s: string) => s.replace(/&/g, '&amp;').replace(/</g, '&lt;').replace(/>/g, '&gt;');

/** A round axis step giving about `target` ticks up to `max`. */
function niceStep(max: number, target = 5): number {
  const raw = max / target;
  const pow = 10 ** Math.floor(Math.log10(raw));
  for (const m of [1, 2, 2.5, 5, 10]) if (m * pow >= raw) return m * pow;
  return 10 * pow;
}

export function renderBarChart(c: BarChart): string {
  const [W, H, left, right, top, bottom] = [c.width, c.height, 64, 20, 92, 40];
  const plotW = W - left - right;
  const plotH = H - top - bottom;
  const n = c.series.length;
  const all = c.groups.flatMap((_, g) => c.series.map((_, s) => (c.bps(g, s) ?? 0) / 1e9));
  const max = Math.max(0.1, ...all) * 1.18;
  const step = niceStep(max);
  const yMax = Math.ceil(max / step) * step;
  const y = (v: number) => top + plotH - (v / yMax) * plotH;
  const anchor = c.series.findIndex((s) => s.anchor);

  const out: string[] = [
    `<svg xmlns="http://www.w3.org/2000/svg" width="${W}" height="${H}" viewBox="0 0 ${W} ${H}" font-family="DejaVu Sans, Arial, Helvetica, sans-serif">`,
    `<rect width="${W}" height="${H}" fill="#ffffff"/>`,
    `<text x="${left}" y="26" font-size="16" font-weight="bold" fill="#222">${esc(c.title)}</text>`,
    `<text x="${left}" y="46" font-size="12" fill="#555">${esc(c.subtitle)}</text>`,
  ];
  let lx = left;
  for (const s of c.series) {
    const label = s.label + (s.anchor ? ' (anchor)' : '');
    out.push(`<rect x="${lx.toFixed(1)}" y="60" width="14" height="14" fill="${s.color}"/>`);
    out.push(`<text x="${(lx + 20).toFixed(1)}" y="72" font-size="${c.legend.fontSize}" fill="#222">${esc(label)}</text>`);
    lx += 34 + label.length * c.legend.charWidth;
  }
  for (let v = 0; v <= yMax + 1e-9; v += step) {
    const yy = y(v).toFixed(1);
    out.push(`<line x1="${left}" x2="${W - right}" y1="${yy}" y2="${yy}" stroke="${v === 0 ? '#444' : '#e3e3e3'}" stroke-width="1"/>`);
    out.push(
      `<text x="${left - 8}" y="${(y(v) + 4).toFixed(1)}" font-size="12" fill="#444" text-anchor="end">${Number(v.toFixed(2))}</text>`,
    );
  }
  if (c.yLabel !== undefined) {
    out.push(
      `<text x="16" y="${top + plotH / 2}" font-size="12" fill="#444" text-anchor="middle" transform="rotate(-90 16 ${top + plotH / 2})">${esc(c.yLabel)}</text>`,
    );
  }
  const groupW = plotW / c.groups.length;
  const barW = Math.min(c.bars.maxWidth, (groupW * c.bars.fill) / Math.max(1, n));
  const gap = c.bars.gap;
  c.groups.forEach((title, g) => {
    const gx = left + g * groupW + (groupW - barW * n) / 2;
    c.series.forEach((s, i) => {
      const x = gx + i * barW;
      const cx = (x + barW / 2).toFixed(1);
      const bps = c.bps(g, i);
      if (bps === undefined) {
        out.push(`<text x="${cx}" y="${y(0) - 6}" font-size="11" fill="#999" text-anchor="middle">n/a</text>`);
        return;
      }
      const v = bps / 1e9;
      out.push(
        `<rect x="${(x + gap).toFixed(1)}" y="${y(v).toFixed(1)}" width="${(barW - 2 * gap).toFixed(1)}" height="${(y(0) - y(v)).toFixed(1)}" fill="${s.color}"/>`,
      );
      out.push(`<text x="${cx}" y="${(y(v) - 6).toFixed(1)}" font-size="12" fill="#222" text-anchor="middle">${v.toFixed(2)}</text>`);
      const r = i === anchor ? null : ratio(bps, anchor < 0 ? undefined : c.bps(g, anchor));
      if (r !== null)
        out.push(
          `<text x="${cx}" y="${(y(v) - 21).toFixed(1)}" font-size="11" font-weight="bold" fill="${s.color}" text-anchor="middle">${r.toFixed(2)}×</text>`,
        );
    });
    out.push(
      `<text x="${(left + g * groupW + groupW / 2).toFixed(1)}" y="${H - bottom + 22}" font-size="13" fill="#222" text-anchor="middle">${esc(title)}</text>`,
    );
  });
  out.push('</svg>', '');
  return out.join('\n');
}
