// The piscina task that hosts one shard: it runs until the plane closes, so
// each shard holds one worker thread for its life. Configuration arrives on
// the task's MessagePort and is read synchronously between slots (the shard
// never returns to its event loop while serving).
import { receiveMessageOnPort, type MessagePort } from 'node:worker_threads';
import { setThreadName } from '@wirecage/tun';
import type { ShardInit, ToShard } from './protocol.js';
import { Shard } from './shard.js';

export interface ShardTask {
  init: ShardInit;
  port: MessagePort;
}

export default function runShard({ init, port }: ShardTask): number {
  setThreadName(`wc-shard${init.index}`);
  const shard = new Shard(
    init,
    (msg, transfer) => port.postMessage(msg, transfer ?? []),
    () => {
      const out: ToShard[] = [];
      for (let m = receiveMessageOnPort(port); m; m = receiveMessageOnPort(port)) out.push(m.message as ToShard);
      return out;
    },
  );
  shard.run();
  port.close();
  return shard.index;
}
