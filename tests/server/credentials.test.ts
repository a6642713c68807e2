// `wirecagesrv up` configured as the systemd unit configures it: the private
// key and the tokens from $CREDENTIALS_DIRECTORY (real files in a real
// directory), the registry in $STATE_DIRECTORY, every setting from a
// WIRECAGESRV_<FLAG> variable and no flag at all; a flag still wins over its
// credential; and the unprefixed variables of the last release work, each
// with a warning naming its new name.
import assert from 'node:assert/strict';
import { existsSync } from 'node:fs';
import { readFile } from 'node:fs/promises';
import { join } from 'node:path';
import { randomBytes } from 'node:crypto';
import { Lab } from '../lib/netns.js';
import type { LabProcess } from '../lib/process.js';
import { SRV_BIN, SRV_TOKEN, SUBNET6, srvLab, untilHealthy, type SrvLab } from '../lib/srv-lab.js';
import { apiRequest } from '../lib/srv-client.js';
import { generateKeyPair, writeSecretFile } from '../lib/wg.js';

const CRED_TOKEN = 'credential-token-5f0e1d2c3b4a';
const ADMIN = 'credential-admin-token-9a8b7c6d';

describe('wirecagesrv up: credentials, $STATE_DIRECTORY and WIRECAGESRV_ variables', function () {
  this.timeout(120_000);
  const lab = new Lab();
  let l: SrvLab;
  let creds: string;
  let serverKey: { privateKeyFile: string; publicKey: string };
  let server: LabProcess | null = null;
  after(async () => {
    await server?.stop();
    await lab.teardown();
  });
  afterEach(async () => {
    await server?.stop();
    server = null;
  });

  before(async () => {
    l = await srvLab(lab);
    creds = await lab.tempDir();
    serverKey = await generateKeyPair(creds, 'private-key-source');
    await writeSecretFile(creds, 'private-key', await readFile(serverKey.privateKeyFile, 'utf8'));
    await writeSecretFile(creds, 'auth-token', `${CRED_TOKEN}\n`);
    await writeSecretFile(creds, 'admin-token', `${ADMIN}\n`);
  });

  /** The settings the lab needs, as the unit's EnvironmentFile would give them. */
  const settings = (): Record<string, string> => ({
    WIRECAGESRV_WG_LISTEN: '0.0.0.0:51820',
    WIRECAGESRV_WG_ENDPOINT: `${l.srvAddr}:51820`,
    WIRECAGESRV_API_LISTEN: `${l.srvAddr}:8443`,
    WIRECAGESRV_INSECURE_HTTP: 'true',
    WIRECAGESRV_SUBNET6: SUBNET6,
  });

  async function start(env: Record<string, string>, args: string[] = []): Promise<LabProcess> {
    const p = l.srv.spawn(process.execPath, [SRV_BIN, 'up', ...args], { env: { PATH: process.env.PATH, HOME: l.dir, ...env } });
    return untilHealthy(l.cli, p, `http://${l.srvAddr}:8443/healthz`);
  }

  const api = (method: string, route: string, token: string, body?: unknown) =>
    apiRequest(l, method, route, [`Authorization: Bearer ${token}`], body);

  const clientKey = async () => (await generateKeyPair(l.dir, `client-${randomBytes(4).toString('hex')}`)).publicKey;

  it('takes the key and both tokens from $CREDENTIALS_DIRECTORY, the registry from $STATE_DIRECTORY, every setting from WIRECAGESRV_*', async () => {
    const stateDir = await lab.tempDir();
    server = await start({ ...settings(), CREDENTIALS_DIRECTORY: creds, STATE_DIRECTORY: stateDir });
    const reg = await api('POST', '/v1/register', CRED_TOKEN, { client_public_key: await clientKey() });
    assert.equal(reg.status, 200, JSON.stringify(reg.body));
    assert.equal(reg.body.server_public_key, serverKey.publicKey, 'the server key is the credential');
    assert.equal(reg.body.server_endpoint, `${l.srvAddr}:51820`);
    assert.equal((await api('POST', '/v1/register', SRV_TOKEN, { client_public_key: await clientKey() })).status, 401);
    const peers = await api('GET', '/v1/peers', ADMIN);
    assert.equal(peers.status, 200, JSON.stringify(peers.body));
    assert.equal((peers.body.peers as unknown[]).length, 1);
    assert.ok(existsSync(join(stateDir, 'registry.db')), 'the registry is in $STATE_DIRECTORY');
    assert.ok(!existsSync(join(stateDir, 'server.key')), 'no key generated: the credential is the key');
    const out = server.output();
    assert.doesNotMatch(out, /deprecated|ignored/, out);
    for (const secret of [CRED_TOKEN, ADMIN]) assert.ok(!out.includes(secret), 'a token in the output');
  });

  it('lets a flag win over its credential, and generates the key in $STATE_DIRECTORY when no credential holds one', async () => {
    const only = await lab.tempDir();
    await writeSecretFile(only, 'auth-token', `${CRED_TOKEN}\n`);
    const stateDir = await lab.tempDir();
    server = await start({ ...settings(), CREDENTIALS_DIRECTORY: only, STATE_DIRECTORY: stateDir }, ['--auth-token-file', l.tokenFile]);
    assert.equal((await api('POST', '/v1/register', CRED_TOKEN, { client_public_key: await clientKey() })).status, 401);
    const reg = await api('POST', '/v1/register', SRV_TOKEN, { client_public_key: await clientKey() });
    assert.equal(reg.status, 200, JSON.stringify(reg.body));
    assert.notEqual(reg.body.server_public_key, serverKey.publicKey);
    assert.ok(existsSync(join(stateDir, 'server.key')), 'the key generated next to the registry');
    // No admin token anywhere: the admin route does not exist.
    assert.equal((await api('GET', '/v1/peers', ADMIN)).status, 404);
  });

  it("still reads last release's unprefixed names, warning with the new name; the new name wins when both are set", async () => {
    const { WIRECAGESRV_API_LISTEN, WIRECAGESRV_WG_ENDPOINT, ...rest } = settings();
    const adminFile = await writeSecretFile(l.dir, 'admin-legacy', `${ADMIN}\n`);
    server = await start({
      ...rest,
      API_LISTEN: WIRECAGESRV_API_LISTEN!,
      WG_ENDPOINT: 'old.invalid:51820',
      WIRECAGESRV_WG_ENDPOINT: WIRECAGESRV_WG_ENDPOINT!,
      AUTH_TOKEN_FILE: l.tokenFile,
      ADMIN_TOKEN_FILE: adminFile,
      WIRECAGESRV_STATE: join(await lab.tempDir(), 'registry.db'),
    });
    const reg = await api('POST', '/v1/register', SRV_TOKEN, { client_public_key: await clientKey() });
    assert.equal(reg.status, 200, JSON.stringify(reg.body));
    assert.equal(reg.body.server_endpoint, WIRECAGESRV_WG_ENDPOINT);
    assert.equal((await api('GET', '/v1/peers', ADMIN)).status, 200);
    const out = server.output();
    assert.match(out, /API_LISTEN is deprecated and will stop working in the next release: set WIRECAGESRV_API_LISTEN instead/);
    assert.match(out, /AUTH_TOKEN_FILE is deprecated and will stop working in the next release: set WIRECAGESRV_AUTH_TOKEN_FILE instead/);
    assert.match(out, /ADMIN_TOKEN_FILE is deprecated .*: set WIRECAGESRV_ADMIN_TOKEN_FILE instead/);
    assert.match(out, /WG_ENDPOINT is ignored: WIRECAGESRV_WG_ENDPOINT is set too/);
  });
});
