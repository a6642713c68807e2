// The public ports forwards may take (--forward-ports LOW-HIGH). Without a
// range any client holding the shared registration token could squat any port
// the server can bind: 8443 before the API restarts, 22, or a privileged port
// when the server runs as root.

export interface PortRange {
  low: number;
  high: number;
}

export const DEFAULT_FORWARD_PORTS: PortRange = { low: 20000, high: 29999 };

export function formatPortRange(r: PortRange): string {
  return `${r.low}-${r.high}`;
}

export function inPortRange(r: PortRange, port: number): boolean {
  return port >= r.low && port <= r.high;
}

/** A --forward-ports value ("20000-29999", or one port), or an error naming it. */
export function parsePortRange(text: string): PortRange {
  const m = /^\s*(\d{1,5})(?:\s*-\s*(\d{1,5}))?\s*$/.exec(text);
  const low = m ? Number(m[1]) : NaN;
  const high = m ? Number(m[2] ?? m[1]) : NaN;
  if (!(low >= 1 && high <= 65535 && low <= high)) {
    throw new Error(
      `--forward-ports "${text}" must be LOW-HIGH with 1 <= LOW <= HIGH <= 65535, such as ${formatPortRange(DEFAULT_FORWARD_PORTS)}`,
    );
  }
  return { low, high };
}

/** Every port of the range once, from `start` up to HIGH and then from LOW: where a search for a free one looks. */
export function* portsFrom(r: PortRange, start: number): Generator<number> {
  const size = r.high - r.low + 1;
  const first = Math.min(Math.max(start, r.low), r.high) - r.low;
  for (let i = 0; i < size; i++) yield r.low + ((first + i) % size);
}
