// A node tells the fleet it is alive: its row in the registry's nodes table,
// renewed every HEARTBEAT_MS; `wirecagesrv nodes` and the fleet gauges list
// the nodes heard from within LIVE_WITHIN_MS. A clean stop removes the row.
import type { Logger } from '@wirecage/wg-engine';
import type { Fleet } from '../registry/index.js';

export const HEARTBEAT_MS = 5000;
/** Three heartbeats missed: the node is taken for gone. */
export const LIVE_WITHIN_MS = 3 * HEARTBEAT_MS;

export interface NodeInfo {
  endpoint: string;
  api: string;
  startedAt: Date;
}

export async function startHeartbeat(fleet: Fleet, info: NodeInfo, log: Logger): Promise<{ stop(): Promise<void> }> {
  await fleet.heartbeat(info);
  let failing = false;
  const beat = () =>
    fleet.heartbeat(info).then(
      () => {
        if (failing) log.info('fleet: heartbeat recorded again');
        failing = false;
      },
      (err: unknown) => {
        if (!failing) log.warn(`fleet: cannot record the heartbeat: ${(err as Error).message}`);
        failing = true;
      },
    );
  let running: Promise<void> | null = null;
  const timer = setInterval(() => void (running ??= beat().finally(() => (running = null))), HEARTBEAT_MS);
  timer.unref();
  return {
    stop: async () => {
      clearInterval(timer);
      await running;
      await fleet.leave().catch((err: unknown) => log.warn(`fleet: cannot remove this node's heartbeat: ${(err as Error).message}`));
    },
  };
}
