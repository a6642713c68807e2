import assert from 'node:assert/strict';
import { chmodSync, mkdirSync, mkdtempSync, readdirSync, readFileSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { generatePrivateKey, keyToBase64 } from '@wirecage/wg-engine';
import { SecretFileError, readKeyFile, readSecretFile, writeSecretFileAtomic } from '../src/crypto/key-file.js';

const mode = (p: string) => statSync(p).mode & 0o777;

describe('key files', () => {
  let dir: string;
  beforeEach(() => (dir = mkdtempSync(join(tmpdir(), 'wirecage-keyfile-'))));
  afterEach(() => rmSync(dir, { recursive: true, force: true }));

  it('creates the file 0600 and missing directories 0700, even with umask 0, and leaves no temp file', () => {
    const old = process.umask(0);
    try {
      writeSecretFileAtomic(join(dir, 'a', 'b', 'work.key'), 'secret\n');
    } finally {
      process.umask(old);
    }
    assert.equal(mode(join(dir, 'a')), 0o700);
    assert.equal(mode(join(dir, 'a', 'b')), 0o700);
    assert.equal(mode(join(dir, 'a', 'b', 'work.key')), 0o600);
    assert.equal(readFileSync(join(dir, 'a', 'b', 'work.key'), 'utf8'), 'secret\n');
    assert.deepEqual(readdirSync(join(dir, 'a', 'b')), ['work.key']);
  });

  it('replaces an existing 0644 file with a new 0600 one', () => {
    const path = join(dir, 'work.key');
    writeFileSync(path, 'old\n', { mode: 0o644 });
    writeSecretFileAtomic(path, 'new\n');
    assert.equal(mode(path), 0o600);
    assert.equal(readFileSync(path, 'utf8'), 'new\n');
    assert.deepEqual(readdirSync(dir), ['work.key']);
  });

  it('with overwrite: false, fails with EEXIST and leaves the existing file and no temp file', () => {
    const path = join(dir, 'work.key');
    writeFileSync(path, 'old\n', { mode: 0o600 });
    assert.throws(
      () => writeSecretFileAtomic(path, 'new\n', { overwrite: false }),
      (err: Error) => err instanceof SecretFileError && err.code === 'EEXIST' && err.message === `${path} already exists`,
    );
    assert.equal(readFileSync(path, 'utf8'), 'old\n');
    assert.deepEqual(readdirSync(dir), ['work.key']);
    writeSecretFileAtomic(join(dir, 'fresh.key'), 'k\n', { overwrite: false });
    assert.equal(readFileSync(join(dir, 'fresh.key'), 'utf8'), 'k\n');
    assert.deepEqual(readdirSync(dir).sort(), ['fresh.key', 'work.key']);
  });

  it('cleans up its temp file when the final rename fails, leaving the target untouched', () => {
    // A non-empty directory in the target's place makes rename(2) fail after the write.
    const path = join(dir, 'work.key');
    mkdirSync(path);
    writeFileSync(join(path, 'inside'), 'x');
    assert.throws(
      () => writeSecretFileAtomic(path, 'secret\n'),
      (err: Error) => err instanceof SecretFileError && /^cannot write .*work\.key: (EISDIR|ENOTEMPTY|EEXIST)$/.test(err.message),
    );
    assert.deepEqual(readdirSync(dir), ['work.key']);
    assert.deepEqual(readdirSync(path), ['inside']);
  });

  it('names a directory it cannot create', () => {
    writeFileSync(join(dir, 'file'), '');
    assert.throws(() => writeSecretFileAtomic(join(dir, 'file', 'work.key'), 'k'), {
      name: 'SecretFileError',
      message: `cannot create the directory ${join(dir, 'file')}: a file is in the way`,
    });
  });

  it('reads a key back, warning when group or others can read it', () => {
    const key = generatePrivateKey();
    const path = join(dir, 'work.key');
    writeSecretFileAtomic(path, `${keyToBase64(key)}\n`);
    assert.deepEqual(readKeyFile(path), { key, warning: null });
    chmodSync(path, 0o640);
    assert.equal(readKeyFile(path).warning, `${path} holds a private key but is accessible to others (mode 0640); run: chmod 600 ${path}`);
    chmodSync(path, 0o604);
    assert.match(readSecretFile(path).warning ?? '', /\(mode 0604\)/);
  });

  it('refuses a key file that holds no key without quoting it, and names a missing file', () => {
    const path = join(dir, 'work.key');
    const almost = keyToBase64(generatePrivateKey()).slice(0, 40);
    writeFileSync(path, almost, { mode: 0o600 });
    assert.throws(
      () => readKeyFile(path),
      (err: Error) => {
        assert.equal(err.message, `${path} does not hold a WireGuard key (44 base64 characters, as \`wirecage keygen\` writes)`);
        return true;
      },
    );
    assert.throws(() => readKeyFile(join(dir, 'none.key')), {
      name: 'SecretFileError',
      message: `cannot read ${join(dir, 'none.key')}: ENOENT`,
    });
  });
});
