import assert from 'node:assert/strict';
import { formatCidr, formatIp, generatePrivateKey, keyToBase64, publicKeyOf } from '@wirecage/wg-engine';
import { ConfigError, parseWgQuick } from '../src/config/wg-quick.js';

const priv = keyToBase64(generatePrivateKey());
const pub1 = keyToBase64(publicKeyOf(generatePrivateKey()));
const pub2 = keyToBase64(publicKeyOf(generatePrivateKey()));
const psk = keyToBase64(generatePrivateKey());

function expectError(text: string, message: string): void {
  assert.throws(
    () => parseWgQuick(text, 'work.conf'),
    (err: Error) => {
      assert.ok(err instanceof ConfigError, `a ConfigError, not ${err.name}: ${err.message}`);
      assert.equal(err.message, message);
      assert.ok(!err.message.includes(priv), 'the private key never appears in an error');
      return true;
    },
  );
}

const iface = `[Interface]\nPrivateKey = ${priv}\nAddress = 10.0.0.2/32\n`;
const peer = `[Peer]\nPublicKey = ${pub1}\nEndpoint = vpn.example.org:51820\nAllowedIPs = 0.0.0.0/0\n`;

describe('wg-quick parser', () => {
  it('reads a complete file: several addresses, DNS with search domains, two peers, PSK, IPv6 endpoint', () => {
    const cfg = parseWgQuick(
      [
        '# work VPN',
        '[Interface]',
        `PrivateKey = ${priv}`,
        'Address = 10.64.0.2/24, fd64::2/64',
        'Address = 10.65.0.2, fd65::2',
        'DNS = 10.64.0.1, fd64::1, corp.example, example.org',
        'MTU = 1380',
        'ListenPort = 51999',
        'ReresolveAfter = 30',
        'Linger = 5',
        '',
        '[Peer]',
        `PublicKey = ${pub1}`,
        `PresharedKey = ${psk}`,
        'Endpoint = [2001:db8::1]:51820',
        'AllowedIPs = 0.0.0.0/0, ::/0',
        'PersistentKeepalive = 25',
        '',
        '[peer]  # keys and sections are case-insensitive',
        `publickey = ${pub2}`,
        'endpoint = 192.0.2.7:4500',
        'allowedips = 10.99.0.0/16',
        'allowedips = 10.98.0.0/16',
        'PersistentKeepalive = off',
      ].join('\n'),
      'work.conf',
    );
    assert.deepEqual(cfg.interface.privateKey.toString('base64'), priv);
    assert.deepEqual(
      cfg.interface.addresses.map((a) => `${formatIp(a.address)}/${a.prefix}`),
      ['10.64.0.2/24', 'fd64::2/64', '10.65.0.2/32', 'fd65::2/128'],
    );
    assert.deepEqual(cfg.interface.dns, { servers: ['10.64.0.1', 'fd64::1'], search: ['corp.example', 'example.org'] });
    assert.equal(cfg.interface.mtu, 1380);
    assert.equal(cfg.interface.listenPort, 51999);
    assert.equal(cfg.interface.reresolveAfter, 30);
    assert.equal(cfg.interface.linger, 5);
    assert.equal(cfg.peers.length, 2);
    assert.deepEqual(cfg.peers[0]!.endpoint, { host: '2001:db8::1', port: 51820 });
    assert.equal(cfg.peers[0]!.presharedKey!.toString('base64'), psk);
    assert.deepEqual(cfg.peers[0]!.allowedIps.map(formatCidr), ['0.0.0.0/0', '::/0']);
    assert.equal(cfg.peers[0]!.persistentKeepalive, 25);
    assert.deepEqual(cfg.peers[1]!.endpoint, { host: '192.0.2.7', port: 4500 });
    assert.deepEqual(cfg.peers[1]!.allowedIps.map(formatCidr), ['10.99.0.0/16', '10.98.0.0/16']);
    assert.equal(cfg.peers[1]!.persistentKeepalive, 0);
  });

  it('keeps a name endpoint unresolved', () => {
    const cfg = parseWgQuick(iface + peer, 'work.conf');
    assert.deepEqual(cfg.peers[0]!.endpoint, { host: 'vpn.example.org', port: 51820 });
  });

  it('names file, line and key for every error', () => {
    expectError(
      iface + 'Colour = blue\n' + peer,
      'work.conf:4: Colour: unknown key in [Interface] (known: PrivateKey, PrivateKeyFile, Address, DNS, MTU, ListenPort, ReresolveAfter, Linger)',
    );
    // Names every object has (Object.prototype) are keys like any other: unknown.
    expectError(
      iface + 'Constructor = 1\n' + peer,
      'work.conf:4: Constructor: unknown key in [Interface] (known: PrivateKey, PrivateKeyFile, Address, DNS, MTU, ListenPort, ReresolveAfter, Linger)',
    );
    expectError(iface + 'PostUp = iptables -A FORWARD\n' + peer, 'work.conf:4: PostUp: wirecage never runs shell hooks; remove PostUp');
    expectError(iface + 'PreDown = true\n' + peer, 'work.conf:4: PreDown: wirecage never runs shell hooks; remove PreDown');
    expectError(iface + 'Table = off\n' + peer, 'work.conf:4: Table: the cage has its own routing table; remove Table');
    expectError(
      iface + 'SaveConfig = true\n' + peer,
      'work.conf:4: SaveConfig: wirecage never writes the configuration back; remove SaveConfig',
    );
    expectError(
      `[Interface]\nPrivateKey = ${priv.slice(0, 40)}\n` + peer,
      'work.conf:2: PrivateKey: not a WireGuard key (44 base64 characters, as `wirecage keygen` prints)',
    );
    expectError(
      iface.replace('10.0.0.2/32', '10.0.0.300/32') + peer,
      'work.conf:3: Address: "10.0.0.300/32" is not an IPv4 or IPv6 address with an optional /prefix',
    );
    expectError(
      iface + peer.replace('vpn.example.org:51820', 'vpn.example.org'),
      'work.conf:6: Endpoint: "vpn.example.org" is not host:port, IPv4:port or [IPv6]:port with a port in 1-65535',
    );
    expectError(
      iface + peer.replace(':51820', ':70000'),
      'work.conf:6: Endpoint: "vpn.example.org:70000" is not host:port, IPv4:port or [IPv6]:port with a port in 1-65535',
    );
    expectError(iface + peer.replace('0.0.0.0/0', '0.0.0.0/33'), 'work.conf:7: AllowedIPs: "0.0.0.0/33" is not an IPv4 or IPv6 prefix');
    expectError(iface + 'MTU = 100\n' + peer, 'work.conf:4: MTU: "100" is not an MTU (576-65535)');
    expectError('PrivateKey = x\n' + iface + peer, 'work.conf:1: PrivateKey: appears before any [Interface] or [Peer] section');
    expectError(`[Interface]\nAddress = 10.0.0.2/32\n` + peer, 'work.conf:1: PrivateKey: missing from [Interface]');
    expectError(iface + '[Peer]\nAllowedIPs = 0.0.0.0/0\n', 'work.conf:4: PublicKey: missing from this [Peer]');
    expectError(iface + peer + peer, 'work.conf:8: PublicKey: the same peer as the [Peer] on line 4');
    expectError(iface, 'work.conf:3: no [Peer] section: the cage would have no way out');
    expectError(iface + '[Tunnel]\n', 'work.conf:4: unknown section [Tunnel]; expected [Interface] or [Peer]');
    expectError(
      iface + peer.replace('0.0.0.0/0', '0.0.0.0/0\nPersistentKeepalive = soon'),
      'work.conf:8: PersistentKeepalive: "soon" is not a number of seconds (0-65535) or "off"',
    );
  });

  it('refuses an MTU below 1280 with an IPv6 address', () => {
    expectError(
      iface.replace('10.0.0.2/32', 'fd00::2/64') + 'MTU = 1200\n' + peer,
      'work.conf:4: MTU: 1200 is below 1280, the minimum for IPv6, and Address has an IPv6 address',
    );
  });

  it('refuses every shell hook and the routing keys by name', () => {
    for (const hook of ['PreUp', 'PostUp', 'PreDown', 'PostDown']) {
      expectError(iface + `${hook} = echo hi\n` + peer, `work.conf:4: ${hook}: wirecage never runs shell hooks; remove ${hook}`);
    }
    expectError(
      iface + 'FwMark = 0x1234\n' + peer,
      'work.conf:4: FwMark: the cage has its own network namespace, so FwMark has no use; remove it',
    );
    expectError(
      iface + peer + 'table = 1234\n',
      'work.conf:8: table: the cage has its own routing table; remove table'.replace('remove table', 'remove Table'),
    );
  });

  it('reports bad values of every kind', () => {
    expectError(
      iface + peer.replace(pub1, pub1.slice(1)),
      'work.conf:5: PublicKey: not a WireGuard key (44 base64 characters, as `wirecage pubkey` prints)',
    );
    expectError(
      iface + peer + `PresharedKey = ${psk.slice(0, 43)}x\n`,
      'work.conf:8: PresharedKey: not a WireGuard key (44 base64 characters, as `wg genpsk` prints)',
    );
    expectError(iface + 'ListenPort = 70000\n' + peer, 'work.conf:4: ListenPort: "70000" is not a port (0-65535)');
    expectError(
      iface + 'ReresolveAfter = soon\n' + peer,
      'work.conf:4: ReresolveAfter: "soon" is not a number of seconds (0-86400; 0: never)',
    );
    expectError(iface + 'Linger = 3601\n' + peer, 'work.conf:4: Linger: "3601" is not a number of seconds (0-3600; 0: no wait)');
    expectError(
      iface + 'DNS = 10.0.0.1, bad_domain!\n' + peer,
      'work.conf:4: DNS: "bad_domain!" is neither an IP address nor a search domain',
    );
    expectError(
      iface + peer.replace('vpn.example.org', '10.0.0.300'),
      'work.conf:6: Endpoint: "10.0.0.300:51820" is not host:port, IPv4:port or [IPv6]:port with a port in 1-65535',
    );
    expectError(
      iface + peer.replace('vpn.example.org', '[vpn.example.org]'),
      'work.conf:6: Endpoint: "[vpn.example.org]:51820" is not host:port, IPv4:port or [IPv6]:port with a port in 1-65535',
    );
    expectError(
      iface + peer.replace('vpn.example.org', '2001:db8::1'),
      'work.conf:6: Endpoint: "2001:db8::1:51820" is not host:port, IPv4:port or [IPv6]:port with a port in 1-65535',
    );
    expectError(
      iface + peer.replace(':51820', ':0'),
      'work.conf:6: Endpoint: "vpn.example.org:0" is not host:port, IPv4:port or [IPv6]:port with a port in 1-65535',
    );
    expectError(iface + 'Address =\n' + peer, 'work.conf:4: Address: has no value');
  });

  it('refuses a single-valued key given twice and a second [Interface]', () => {
    expectError(iface + 'MTU = 1400\nmtu = 1380\n' + peer, 'work.conf:5: mtu: given twice in this section (first on line 4)');
    expectError(iface + peer + 'Endpoint = 192.0.2.1:1\n', 'work.conf:8: Endpoint: given twice in this section (first on line 6)');
    expectError(
      iface + peer + '[Interface]\n',
      'work.conf:8: a second [Interface] section (the first is on line 1); a file describes one interface',
    );
  });

  it('never quotes the private key, even where it does not belong', () => {
    expectError(`[Interface]\nPrivateKey ${priv}\n` + peer, 'work.conf:2: expected "Key = Value" or a [Section] header');
    expectError(`[Interface]\n${priv}\n` + peer, 'work.conf:2: expected "Key = Value" or a [Section] header');
    // A key made only of letters and digits looks like "Name =" to a naive parser.
    expectError(
      `[Interface]\nabcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQ=\n` + peer,
      'work.conf:2: expected "Key = Value" or a [Section] header',
    );
    expectError(iface + `DNS = ${priv}\n` + peer, 'work.conf:4: DNS: "<key hidden>" is neither an IP address nor a search domain');
    expectError(
      iface + peer.replace('vpn.example.org:51820', priv),
      `work.conf:6: Endpoint: "<key hidden>" is not host:port, IPv4:port or [IPv6]:port with a port in 1-65535`,
    );
  });

  it('accepts CRLF line endings, spaces inside section brackets, and comments anywhere', () => {
    const cfg = parseWgQuick((`[ Interface ]  # home\n` + iface.split('\n').slice(1).join('\n') + peer).replace(/\n/g, '\r\n'), 'win.conf');
    assert.deepEqual(cfg.peers[0]!.endpoint, { host: 'vpn.example.org', port: 51820 });
    assert.deepEqual(
      cfg.interface.addresses.map((a) => `${formatIp(a.address)}/${a.prefix}`),
      ['10.0.0.2/32'],
    );
  });
});
