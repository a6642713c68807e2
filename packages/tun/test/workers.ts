// Starting the test's worker fixtures. Node 20 applies no --import hooks given
// in a Worker's execArgv (nodejs/node#47747), so workers boot through tsx's tsImport.
import { createRequire } from 'node:module';
import { Worker } from 'node:worker_threads';
import type { Doorbell, PacketRing, PumpStats } from '../src/index.js';
import type { ShardWorkerData } from './fixtures/shard-worker.js';

export interface TestWorker<R> {
  worker: Worker;
  /** The first message the worker posts. */
  ready: Promise<unknown>;
  /** The last message before the worker exited (undefined if it posted none after 'ready'). */
  result: Promise<R>;
  /** The exit code. */
  exited: Promise<number>;
}

export function workerBoot(fixture: string): string {
  const entry = new URL(`./fixtures/${fixture}`, import.meta.url).href;
  const tsxApi = createRequire(import.meta.url).resolve('tsx/esm/api');
  return `require(${JSON.stringify(tsxApi)}).tsImport(${JSON.stringify(entry)}, ${JSON.stringify(entry)});`;
}

export function startWorker<R>(fixture: string, workerData: unknown): TestWorker<R> {
  const worker = new Worker(workerBoot(fixture), { eval: true, workerData });
  const messages: unknown[] = [];
  let onReady!: (m: unknown) => void;
  const ready = new Promise<unknown>((resolve) => (onReady = resolve));
  worker.on('message', (m) => {
    if (messages.length === 0) onReady(m);
    messages.push(m);
  });
  const exited = new Promise<number>((resolve, reject) => {
    worker.on('error', reject);
    worker.on('exit', resolve);
  });
  exited.catch(() => {});
  const result = exited.then(() => (messages.length > 1 ? messages[messages.length - 1] : undefined) as R);
  const readyOrFail = Promise.race([
    ready,
    exited.then((code) => Promise.reject(new Error(`worker exited (${code}) before it was ready`))),
  ]);
  readyOrFail.catch(() => {});
  return { worker, ready: readyOrFail, result, exited };
}

/** What shard-worker.ts posts last: the slots it transformed, the BUSY ones it took over, and what its emitter sent. */
export type ShardResult = { processed: number; recovered: number; emitted?: number; emitter?: PumpStats };

/** shard-worker.ts serving `lane` (default 0) of `ring` in `mode` until the ring closes. */
export function startShard(
  ring: PacketRing,
  doorbell: Doorbell,
  mode: ShardWorkerData['mode'],
  extra: Pick<ShardWorkerData, 'crashAfter' | 'vnetHdr' | 'emitUdpFd' | 'emitTunFd' | 'gso'> & { lane?: number } = {},
): TestWorker<ShardResult> {
  const data: ShardWorkerData = { ring: ring.sab, doorbell: doorbell.sab, lane: 0, mode, ...extra };
  return startWorker<ShardResult>('shard-worker.ts', data);
}
