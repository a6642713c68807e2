// The file piscina loads in each shard thread. piscina loads a worker file with require() and falls
// back to import() when that fails; on Node 20.19+ require() of an ES module can fail half-way, and
// the import() then throws "Unexpected status of a module that is imported again after being
// required" (nodejs/node#55500), which hides the first error and stops the shard (seen about once in
// 280 cage starts). This CommonJS entry loads the shard through import() only.
import type { ShardTask } from './shard-worker.js';

export = async function shardEntry(task: ShardTask): Promise<number> {
  const { default: runShard } = await import('./shard-worker.js');
  return runShard(task);
};
