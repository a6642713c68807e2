// No secret in any log line: `wirecagesrv up --log-level debug --log-format json`
// (and `wirecage run --log-level debug --log-format json`) through a registration, a handshake,
// a port forward, a refused token and a shutdown; then every line both wrote
// is searched for the lab's private keys (the server's and the client's) and
// tokens, in base64, base64url and hex. The JSON lines are also checked to be
// one object each, with time, level and msg.
import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { readFile } from 'node:fs/promises';
import { WIRECAGE_BIN } from '../lib/cage.js';
import { Lab, nsRun } from '../lib/netns.js';
import { GATEWAY4, SRV_TOKEN, addServer, srvLab, startWirecagesrv, type Registration, type SrvLab } from '../lib/srv-lab.js';
import { waitFor } from '../lib/wait.js';
import { generateKeyPair, writeSecretFile } from '../lib/wg.js';
import { startWireguardGo } from '../lib/wireguard-go.js';

const ADMIN = `lab-admin-${randomBytes(12).toString('hex')}`;
const FORWARD_PORT = 20081;

/** A secret's spellings a log could carry: as given, and its bytes in base64, base64url and hex (either case). */
function spellings(name: string, text: string, bytes?: Buffer): { name: string; needle: string }[] {
  const b = bytes ?? Buffer.from(text);
  const forms = new Set([
    text,
    b.toString('base64'),
    b.toString('base64').replace(/=+$/, ''),
    b.toString('base64url'),
    b.toString('hex'),
    b.toString('hex').toUpperCase(),
  ]);
  return [...forms].map((needle) => ({ name, needle }));
}

describe('no secret in the logs', function () {
  this.timeout(120_000);
  const lab = new Lab();
  let l: SrvLab;
  after(() => lab.teardown());

  before(async () => {
    l = await srvLab(lab);
  });

  it('wirecagesrv at debug (JSON) and wirecage at debug log no key and no token through a registration, a handshake, a forward', async () => {
    const serverKeys = await generateKeyPair(l.dir, 'server');
    const adminFile = await writeSecretFile(l.dir, 'admin', `${ADMIN}\n`);
    const server = await startWirecagesrv(l, [
      '--private-key-file',
      serverKeys.privateKeyFile,
      '--admin-token-file',
      adminFile,
      '--log-level',
      'debug',
      '--log-format',
      'json',
      '--workers',
      '2',
    ]);

    // A wireguard-go client whose private key the test knows: registered, shaking hands, forwarded.
    const go = await startWireguardGo(l.cli);
    const api = async (method: string, route: string, token: string, body?: unknown) => {
      // Tokens go in a header file, never argv.
      const headers = await writeSecretFile(
        l.dir,
        `h-${randomBytes(4).toString('hex')}`,
        `Authorization: Bearer ${token}\nContent-Type: application/json\n`,
      );
      const data = body === undefined ? [] : ['--data-binary', JSON.stringify(body)];
      const r = await l.cli.runOrThrow('curl', [
        '-sS',
        '--max-time',
        '5',
        '-w',
        '\n%{http_code}',
        '-X',
        method,
        '-H',
        `@${headers}`,
        ...data,
        `http://${l.srvAddr}:8443${route}`,
      ]);
      const lines = r.stdout.trimEnd().split('\n');
      return { status: Number(lines.pop()), body: JSON.parse(lines.join('\n')) as Record<string, unknown> };
    };
    const reg = await api('POST', '/v1/register', SRV_TOKEN, { client_public_key: go.publicKey });
    assert.equal(reg.status, 200, JSON.stringify(reg.body));
    const r = reg.body as unknown as Registration;
    await l.cli.addAddress(go.ifname, r.client_address);
    await l.cli.linkUp(go.ifname, r.mtu);
    await go.setPeer({
      publicKey: r.server_public_key,
      endpoint: r.server_endpoint,
      allowedIps: r.allowed_ips,
      persistentKeepalive: r.persistent_keepalive,
    });
    await waitFor(async () => (await l.cli.run('ping', ['-n', '-c', '1', '-W', '1', GATEWAY4], { timeoutMs: 3000 })).code === 0, {
      what: 'a handshake and a ping through wireguard-go',
      timeoutMs: 15_000,
      describe: () => server.describe(),
    });
    const fwd = await api('POST', '/v1/portforward', ADMIN, {
      client_public_key: go.publicKey,
      protocol: 'tcp',
      public_port: FORWARD_PORT,
      target_port: 80,
    });
    assert.equal(fwd.status, 201, JSON.stringify(fwd.body));
    assert.equal((await api('POST', '/v1/register', `${SRV_TOKEN}x`, { client_public_key: go.publicKey })).status, 401);
    assert.equal(
      (await api('DELETE', '/v1/portforward', ADMIN, { client_public_key: go.publicKey, protocol: 'tcp', public_port: FORWARD_PORT }))
        .status,
      200,
    );

    // The CLI side: add-server with the token, a caged command at debug.
    await addServer(l, 'lab');
    const caged = await nsRun(
      l.cli,
      process.execPath,
      [
        WIRECAGE_BIN,
        'run',
        'lab',
        '--log-level',
        'debug',
        '--log-format',
        'json',
        '--wait-handshake',
        '10',
        '--',
        'ping',
        '-n',
        '-c',
        '1',
        '-W',
        '2',
        GATEWAY4,
      ],
      { env: l.env, timeoutMs: 60_000 },
    );
    assert.equal(caged.code, 0, caged.stderr);
    // Stage 2's records are JSON, named wirecage (what else is on stderr, a warning, is for a person).
    const records = caged.stderr
      .split('\n')
      .filter((x) => x.startsWith('{'))
      .map((x) => JSON.parse(x) as Record<string, unknown>);
    assert.ok(
      records.length >= 1 && records.every((o) => o.name === 'wirecage' && typeof o.time === 'string' && typeof o.msg === 'string'),
      caged.stderr,
    );

    await server.stop();
    const srvLog = server.output();
    const lines = srvLog.split('\n').filter((x) => x.trim() !== '');
    assert.ok(lines.length >= 5, srvLog);
    for (const line of lines) {
      const o = JSON.parse(line) as Record<string, unknown>;
      assert.ok(
        typeof o.time === 'string' && !Number.isNaN(Date.parse(o.time)) && typeof o.level === 'string' && typeof o.msg === 'string',
        line,
      );
    }
    // The scan covered the events that handle secrets: registrations and a forward.
    assert.match(srvLog, /registered peer/);
    assert.match(srvLog, /forward tcp .* port 20081/);

    const serverPriv = (await readFile(serverKeys.privateKeyFile, 'utf8')).trim();
    const clientPriv = (await readFile(go.keys.privateKeyFile, 'utf8')).trim();
    const secrets = [
      ...spellings('the server private key', serverPriv, Buffer.from(serverPriv, 'base64')),
      ...spellings('the client private key', clientPriv, Buffer.from(clientPriv, 'base64')),
      ...spellings('the registration token', SRV_TOKEN),
      ...spellings('the admin token', ADMIN),
    ];
    const logs = { wirecagesrv: srvLog, 'wirecage run': caged.stdout + caged.stderr };
    const found = Object.entries(logs).flatMap(([who, text]) =>
      secrets.filter((s) => text.includes(s.needle)).map((s) => `${who} logged ${s.name} (${s.needle})`),
    );
    assert.deepEqual(found, []);
    // The public keys do appear (peers are named by them): the scan looks where keys are written.
    assert.ok(srvLog.includes(go.publicKey.slice(0, 8)), 'the client is named by its public key');
  });
});
