// The DNS forwarder's pure parts: --dns-upstream and resolv.conf parsing, and
// the few wire-format helpers (matching answers, SERVFAIL). The forwarder
// itself runs in tests/server/dns.test.ts, in a lab.
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { firstQuestion, isQuery, isResponse, messageId, servfail, withId } from '../src/nat/dns-message.js';
import { formatDnsUpstream, hostDnsUpstreams, parseDnsUpstream, resolvConfNameservers } from '../src/nat/dns-upstream.js';

/** A query as dig sends it: id, RD, one question. */
function query(id: number, name: string, type = 1): Buffer {
  const header = Buffer.from([id >> 8, id & 0xff, 0x01, 0x00, 0, 1, 0, 0, 0, 0, 0, 0]);
  const labels = name.split('.').map((l) => Buffer.concat([Buffer.from([l.length]), Buffer.from(l)]));
  return Buffer.concat([header, ...labels, Buffer.from([0, type >> 8, type & 0xff, 0, 1])]);
}

describe('DNS forwarder parts', () => {
  it('parses --dns-upstream: IPv4, IPv4:port, bare IPv6, [IPv6]:port', () => {
    assert.deepEqual(parseDnsUpstream('192.0.2.53'), { address: '192.0.2.53', port: 53 });
    assert.deepEqual(parseDnsUpstream(' 192.0.2.53:5353 '), { address: '192.0.2.53', port: 5353 });
    assert.deepEqual(parseDnsUpstream('2001:db8::53'), { address: '2001:db8::53', port: 53 });
    assert.deepEqual(parseDnsUpstream('[2001:db8::53]:853'), { address: '2001:db8::53', port: 853 });
    assert.deepEqual(parseDnsUpstream('[2001:db8::53]'), { address: '2001:db8::53', port: 53 });
    assert.equal(formatDnsUpstream({ address: '2001:db8::53', port: 53 }), '[2001:db8::53]:53');
    assert.equal(formatDnsUpstream({ address: '192.0.2.1', port: 53 }), '192.0.2.1:53');
  });

  it('refuses names, bad ports and unbracketed IPv6 with a port, naming the flag', () => {
    for (const bad of ['dns.example', 'dns.example:53', '192.0.2.1:0', '192.0.2.1:70000', '[192.0.2.1]:53', '192.0.2.1:x', '']) {
      assert.throws(() => parseDnsUpstream(bad), /--dns-upstream/, bad);
    }
  });

  it('reads the nameservers of a resolv.conf in order, stubs included; none means 127.0.0.1 as for glibc', () => {
    const text =
      '# generated\nsearch example.org\nnameserver 127.0.0.53\n  nameserver 2001:db8::1\nnameserver fe80::1%eth0\nnameserver bogus\noptions edns0\n';
    assert.deepEqual(
      resolvConfNameservers(text).map((u) => u.address),
      ['127.0.0.53', '2001:db8::1', 'fe80::1%eth0'],
    );
    const dir = mkdtempSync(join(tmpdir(), 'wcs-dns-'));
    try {
      writeFileSync(join(dir, 'empty.conf'), 'search example.org\n');
      assert.deepEqual(hostDnsUpstreams(join(dir, 'empty.conf')), [{ address: '127.0.0.1', port: 53 }]);
      assert.throws(() => hostDnsUpstreams(join(dir, 'missing.conf')), /missing\.conf.*--dns-upstream/);
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });

  it('tells queries from answers, swaps ids, finds the question', () => {
    const q = query(0xbeef, 'web.lab', 28);
    assert.ok(isQuery(q));
    assert.ok(!isResponse(q));
    assert.ok(!isQuery(q.subarray(0, 11)));
    const remapped = withId(q, 7);
    assert.equal(messageId(remapped), 7);
    assert.equal(messageId(q), 0xbeef, 'the original is left alone');
    assert.deepEqual(firstQuestion(q), q.subarray(12));
    assert.equal(firstQuestion(q.subarray(0, q.length - 1)), null, 'a question cut short');
    const pointer = Buffer.concat([q.subarray(0, 12), Buffer.from([0xc0, 0x0c, 0, 1, 0, 1])]);
    assert.equal(firstQuestion(pointer), null);
  });

  it("builds SERVFAIL with the query's id, opcode, RD and question", () => {
    const q = query(0x1234, 'silent.lab');
    const r = servfail(q);
    assert.equal(messageId(r), 0x1234);
    assert.ok(isResponse(r));
    assert.equal(r[2]! & 0x79, 0x01, 'opcode 0 and RD kept');
    assert.equal(r[3]! & 0x0f, 2, 'RCODE SERVFAIL');
    assert.equal(r.readUInt16BE(4), 1);
    assert.deepEqual(r.subarray(12), q.subarray(12));
    const bare = servfail(Buffer.concat([q.subarray(0, 12), Buffer.from([99])]));
    assert.equal(bare.length, 12);
    assert.equal(bare.readUInt16BE(4), 0, "no question when the query's was malformed");
  });
});
