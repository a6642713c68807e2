#!/usr/bin/env node
import { execute } from '@oclif/core';
import { topLevelArgv } from '../dist/cage/argv.js';

// `wirecage --wg-public-key ... -- CMD`, the earlier wirecage's form, is `wirecage run ...`.
await execute({ dir: import.meta.url, args: topLevelArgv(process.argv.slice(2)) });
