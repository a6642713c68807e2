import type { Logger } from '@wirecage/wg-engine';
import type { ForwardProtocol } from '../registry/index.js';

/** What a listener relays to: a peer's tunnel addresses and the port in its cage. */
export interface ForwardTarget {
  protocol: ForwardProtocol;
  publicPort: number;
  targetPort: number;
  address4: string;
  address6: string;
}

export interface RelayContext {
  /** The NAT namespace; null while there is none (every connection is then refused). */
  natNetnsFd(): number | null;
  logger: Logger;
}

/** One public port's listener and everything flowing through it. */
export interface ForwardListener {
  readonly target: ForwardTarget;
  /** Open connections (TCP) or flows (UDP). */
  readonly active: number;
  /** Stops listening and cuts every connection or flow. */
  close(): Promise<void>;
}

export function peerAddress(t: ForwardTarget, family: 4 | 6): string {
  return family === 6 ? t.address6 : t.address4;
}
