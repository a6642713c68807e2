import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { generatePrivateKey, keyToBase64, publicKeyOf } from '@wirecage/wg-engine';

/** A fresh directory removed after the suite. */
export function tempDirs(): { make(): string; cleanup(): void } {
  const dirs: string[] = [];
  return {
    make() {
      const d = mkdtempSync(join(tmpdir(), 'wirecagesrv-test-'));
      dirs.push(d);
      return d;
    },
    cleanup() {
      for (const d of dirs.splice(0)) rmSync(d, { recursive: true, force: true });
    },
  };
}

export function newPublicKey(): string {
  return keyToBase64(publicKeyOf(generatePrivateKey()));
}
