// Flow limits: one peer cannot take every socket of the server. A flow (a
// relayed TCP connection or a tracked UDP 5-tuple) holds two file
// descriptors while it lives, so the limits also bound the fds in use.

export const DEFAULT_MAX_FLOWS = 8192;
export const DEFAULT_MAX_FLOWS_PER_PEER = 1024;

export class FlowLimits {
  private total = 0;
  private readonly perSource = new Map<string, number>();

  constructor(
    private max = DEFAULT_MAX_FLOWS,
    private maxPeer = DEFAULT_MAX_FLOWS_PER_PEER,
  ) {}

  get maxFlows(): number {
    return this.max;
  }

  get maxPerPeer(): number {
    return this.maxPeer;
  }

  /**
   * A reload's new limits, for the next acquire(): flows already open stay open even above a
   * lowered limit (new ones wait until enough of them end).
   */
  setLimits(maxFlows: number, maxPerPeer: number): void {
    this.max = maxFlows;
    this.maxPeer = maxPerPeer;
  }

  /** Takes a slot for a flow from `source` (the peer's tunnel address); 'global' or 'peer' says which limit refused. */
  acquire(source: string): 'global' | 'peer' | null {
    const mine = this.perSource.get(source) ?? 0;
    if (this.total >= this.max) return 'global';
    if (mine >= this.maxPeer) return 'peer';
    this.total++;
    this.perSource.set(source, mine + 1);
    return null;
  }

  release(source: string): void {
    const mine = this.perSource.get(source);
    if (mine === undefined) return;
    this.total--;
    if (mine <= 1) this.perSource.delete(source);
    else this.perSource.set(source, mine - 1);
  }

  get active(): number {
    return this.total;
  }

  activeFor(source: string): number {
    return this.perSource.get(source) ?? 0;
  }
}
