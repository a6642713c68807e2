// The named cage's control socket (cage/control.ts) on a real unix socket:
// the protocol's answers, a session counted until its connection closes, a
// stop answered once the handler says the cage is empty; the name lock
// (flock) held by one open file only; cage names; ps's table.
import assert from 'node:assert/strict';
import { closeSync, mkdtempSync, rmSync, statSync } from 'node:fs';
import { createConnection } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { controlRequest, serveControl, type JoinGrant } from '../src/cage/control.js';
import { NameTakenError, checkCageName, claimName } from '../src/cage/named.js';
import { formatPs, type PsRow } from '../src/cage/ps-format.js';

function rawRequest(path: string, line: string): Promise<string> {
  return new Promise((resolve, reject) => {
    const s = createConnection(path);
    let out = '';
    s.on('connect', () => s.write(line));
    s.on('data', (d) => (out += d.toString()));
    s.on('close', () => resolve(out));
    s.on('error', reject);
  });
}

describe('named cages: control socket, name lock, names, ps table', () => {
  let dir: string;
  beforeEach(() => {
    dir = mkdtempSync(join(tmpdir(), 'wct-ctl-'));
  });
  afterEach(() => rmSync(dir, { recursive: true, force: true }));

  const grant: JoinGrant = {
    ok: true,
    pid: 4242,
    ns: { user: 1, mnt: 2, net: 3, pid: 4 },
    name: 'work',
    tun: 'wirecage',
    seal: { dropCapabilities: true, sshAgent: false, gui: false, audio: false, shares: [] },
  };

  it('grants a join to its own user, counts the session until the connection closes, and answers a stop once the cage is empty', async () => {
    const path = join(dir, 'work.ctl');
    let sessions = 0;
    let ended = 0;
    let emptied!: () => void;
    const server = await serveControl(path, {
      join: () => (sessions++, grant),
      sessionEnded: () => ended++,
      stop: () => new Promise<void>((resolve) => (emptied = resolve)),
    });
    try {
      assert.equal(statSync(path).mode & 0o777, 0o600);
      const { reply, socket, fd } = await controlRequest(path, 'work', { op: 'join' });
      assert.deepEqual(reply, grant);
      assert.ok(fd > 2);
      assert.deepEqual([sessions, ended], [1, 0]);
      await new Promise<void>((resolve) => {
        socket.once('close', () => resolve());
        socket.destroy();
      });
      await new Promise((resolve) => setImmediate(resolve));
      for (let i = 0; i < 500 && ended === 0; i++) await new Promise((resolve) => setTimeout(resolve, 10));
      assert.equal(ended, 1, 'the session did not end with its connection');

      let answered = false;
      const stopping = controlRequest(path, 'work', { op: 'stop', timeout: 1 }).then((r) => {
        answered = true;
        r.socket.destroy();
        return r.reply;
      });
      for (let i = 0; i < 500 && emptied === undefined; i++) await new Promise((resolve) => setTimeout(resolve, 10));
      assert.equal(answered, false, 'stop answered before the cage was empty');
      emptied();
      assert.deepEqual(await stopping, { ok: true });
    } finally {
      await server.close();
    }
  });

  it('answers a bad request with a refusal and closes', async () => {
    const path = join(dir, 'x.ctl');
    const server = await serveControl(path, { join: () => 'stopping', sessionEnded: () => {}, stop: async () => {} });
    try {
      assert.match(await rawRequest(path, 'not json\n'), /^\{"ok":false,"error":"a request is one JSON line"\}\n$/);
      assert.match(await rawRequest(path, '{"op":"exec"}\n'), /"ok":false,"error":"unknown request/);
      assert.match(await rawRequest(path, '{"op":"stop","timeout":-1}\n'), /"ok":false/);
      assert.match(await rawRequest(path, '{"op":"join"}\n'), /^\{"ok":false,"error":"stopping"\}\n$/);
    } finally {
      await server.close();
    }
    await assert.rejects(controlRequest(path, 'x', { op: 'join' }), /no cage named x is running/);
  });

  it('lets one open file at a time hold a name, and frees it when that file is closed', async () => {
    const fd = await claimName(dir, 'work');
    await assert.rejects(claimName(dir, 'work'), NameTakenError);
    closeSync(fd);
    closeSync(await claimName(dir, 'work'));
  });

  it('accepts names of [A-Za-z0-9_.-]{1,32} only', () => {
    for (const ok of ['work', 'a', 'A_b-c.9', 'x'.repeat(32)]) assert.equal(checkCageName(ok), ok);
    for (const bad of ['', 'x'.repeat(33), 'a/b', '.', '..', 'a b', 'é']) {
      assert.throws(
        () => checkCageName(bad),
        (err: Error & { exitCode?: number }) => err.exitCode === 2 && /is not a cage name/.test(err.message),
      );
    }
  });

  it('prints ps rows as an aligned table, "-" for an unnamed cage', () => {
    const row = (over: Partial<PsRow>): PsRow => ({
      name: 'work',
      source: 'work.conf',
      tun: 'wirecage',
      pid: 1,
      addresses: ['10.0.0.2/32'],
      endpoint: '192.0.2.1:51820',
      latestHandshake: 1_000,
      rxBytes: 2048,
      txBytes: 10,
      processes: 3,
      startedAt: 900,
      uptime: 3725,
      keep: false,
      state: 'up',
      upSince: 950,
      lastError: null,
      ...over,
    });
    const text = formatPs(
      [row({}), row({ name: null, latestHandshake: null, state: 'handshaking', processes: null, uptime: 59 })],
      1_005_000,
    );
    assert.equal(
      text,
      [
        'NAME  SOURCE     ADDRESSES    ENDPOINT         HANDSHAKE    RX       TX    PROCS  UPTIME',
        'work  work.conf  10.0.0.2/32  192.0.2.1:51820  5s ago       2.0 KiB  10 B  3      1h02m',
        '-     work.conf  10.0.0.2/32  192.0.2.1:51820  handshaking  2.0 KiB  10 B  ?      59s',
        '',
      ].join('\n'),
    );
    assert.equal(formatPs([], 0), 'no cage is running\n');
  });
});
