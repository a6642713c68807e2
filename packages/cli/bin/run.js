#!/usr/bin/env node
import { topLevelArgv } from '../dist/cage/argv.js';
import { fastRun } from '../dist/fast-run.js';

// `wirecage --wg-public-key ... -- CMD`, the earlier wirecage's form, is `wirecage run ...`.
const args = topLevelArgv(process.argv.slice(2));
// A run skips oclif's start-up (fast-run.ts says why); help and every other command are oclif's.
if (!(await fastRun(args))) {
  const { execute } = await import('@oclif/core');
  await execute({ dir: import.meta.url, args });
}
