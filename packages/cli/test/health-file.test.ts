import assert from 'node:assert/strict';
import { mkdtempSync, rmSync, statSync, symlinkSync, writeFileSync, readFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { healthFile, readHealth, removeHealth, writeHealth } from '../src/cage/health-file.js';
import { formatShow, withHealth, type ShowInterface } from '../src/show-format.js';
import type { PeerHealth } from '../src/cage/heal.js';

const KEY = 'mKm8a+yYcsz09YMPR+MINTjg3XxmRnkTb8DIjG5Uehs=';
const handshaking: PeerHealth = {
  peer: KEY.slice(0, 8),
  publicKey: KEY,
  endpoint: '192.0.2.1:51820',
  state: 'handshaking',
  upSince: null,
  lastError: 'no handshake with 192.0.2.1:51820 for 60 s',
};

describe("the cage's health file", () => {
  let dir: string;
  beforeEach(() => {
    dir = mkdtempSync(join(tmpdir(), 'wirecage-health-'));
  });
  afterEach(() => rmSync(dir, { recursive: true, force: true }));

  it('is written 0600 next to the socket, replaced whole on each change, and read back', () => {
    const file = healthFile(dir, 'wirecage', 4242);
    assert.equal(file, join(dir, 'wirecage@4242.health.json'));
    assert.equal(readHealth(file), null, 'none before the first write');
    writeHealth(file, [handshaking], 1000);
    assert.equal(statSync(file).mode & 0o777, 0o600);
    assert.deepEqual(readHealth(file), { updated: 1000, peers: [handshaking] });
    const up = { ...handshaking, state: 'up' as const, upSince: 5000 };
    writeHealth(file, [up], 2000);
    assert.deepEqual(readHealth(file), { updated: 2000, peers: [up] });
    removeHealth(file);
    assert.equal(readHealth(file), null);
  });

  it('replaces a link planted at its name instead of writing through it', () => {
    const target = join(dir, 'elsewhere');
    writeFileSync(target, 'untouched');
    const file = healthFile(dir, 'wirecage', 1);
    symlinkSync(target, file);
    writeHealth(file, [handshaking]);
    assert.equal(readFileSync(target, 'utf8'), 'untouched');
    assert.equal(readHealth(file)?.peers[0]?.state, 'handshaking');
  });

  it('reads anything else as no state', () => {
    const file = healthFile(dir, 'wirecage', 2);
    for (const junk of ['', 'not json', '[]', '{"updated":"x","peers":[]}', '{"updated":1}']) {
      writeFileSync(file, junk);
      assert.equal(readHealth(file), null, junk);
    }
  });
});

describe('`show` with the healing state', () => {
  const iface: ShowInterface = {
    publicKey: null,
    listenPort: null,
    peers: [
      {
        publicKey: KEY,
        presharedKey: null,
        endpoint: '192.0.2.1:51820',
        allowedIps: ['0.0.0.0/0'],
        latestHandshake: null,
        rxBytes: 0,
        txBytes: 0,
        persistentKeepalive: 0,
      },
    ],
  };

  it('adds state, upSince (Unix seconds) and lastError to the peer the file names', () => {
    const up = withHealth(iface, [{ ...handshaking, state: 'up', upSince: 1_700_000_000_500 }]);
    assert.deepEqual(
      { ...up.peers[0], allowedIps: undefined },
      { ...iface.peers[0], allowedIps: undefined, state: 'up', upSince: 1_700_000_000, lastError: handshaking.lastError },
    );
    assert.deepEqual(withHealth(iface, []), iface, 'a peer the file does not name is left as it is');
  });

  it('prints the state as wg show prints the rest', () => {
    const now = 1_700_000_090_000;
    const up = formatShow('t', withHealth(iface, [{ ...handshaking, state: 'up', upSince: 1_700_000_000_000, lastError: null }]), now);
    assert.match(up, /\n {2}state: up, since 1 minute, 30 seconds ago\n/);
    assert.doesNotMatch(up, /last error/);
    const down = formatShow('t', withHealth(iface, [handshaking]), now);
    assert.match(down, /\n {2}state: handshaking\n {2}last error: no handshake with 192\.0\.2\.1:51820 for 60 s\n/);
  });
});
