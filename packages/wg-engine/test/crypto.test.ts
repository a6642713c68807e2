// Known-answer tests for the WireGuard primitives (paper section 5.4) and the
// key text formats. Every expected value comes from a published vector or an
// implementation other than the one under test.
import assert from 'node:assert/strict';
import { blake2s } from '@noble/hashes/blake2.js';
import {
  aeadDecrypt,
  aeadEncrypt,
  clampPrivateKey,
  dh,
  generatePrivateKey,
  hash,
  kdf,
  mac,
  publicKeyOf,
  randomBytes,
  xaeadDecrypt,
  xaeadEncrypt,
} from '../src/crypto/primitives.js';
import { KeyFormatError, keyToBase64, keyToHex, parseKeyBase64, parseKeyHex } from '../src/crypto/keys.js';
import { sodium } from '../src/crypto/sodium.js';

const hex = (s: string): Buffer => Buffer.from(s.replace(/\s+/g, ''), 'hex');
const counting = (from: number, n: number): Buffer => Buffer.from(Array.from({ length: n }, (_, i) => (from + i) & 0xff));

describe('BLAKE2s: hash() and mac()', () => {
  it('hashes "abc" as RFC 7693 Appendix B', () => {
    assert.deepEqual(hash(Buffer.from('abc')), hex('508c5e8c327c14e2e1a72ba34eeb452f37458b209ed63a294d999b4c86675982'));
  });

  it('hashes its arguments as one concatenated input', () => {
    assert.deepEqual(hash(Buffer.from('a'), Buffer.from(''), Buffer.from('bc')), hash(Buffer.from('abc')));
    assert.deepEqual(mac(counting(0, 32), counting(0, 50), counting(50, 66)), mac(counting(0, 32), counting(0, 116)));
  });

  // RFC 7693 Appendix E: BLAKE2s-256 over the unkeyed and keyed hashes of
  // Fibonacci-derived inputs, for every pair of output and input length.
  it('reproduces the RFC 7693 Appendix E self-test grand hash, agreeing with hash() and mac() where they apply', () => {
    const selftestSeq = (len: number, seed: number): Uint8Array => {
      const out = new Uint8Array(len);
      let a = Math.imul(0xdead4bad, seed) >>> 0;
      let b = 1;
      for (let i = 0; i < len; i++) {
        const t = (a + b) >>> 0;
        a = b;
        b = t;
        out[i] = t >>> 24;
      }
      return out;
    };
    const grandInput: Uint8Array[] = [];
    let hashChecks = 0;
    let macChecks = 0;
    for (const outlen of [16, 20, 28, 32]) {
      for (const inlen of [0, 3, 64, 65, 255, 1024]) {
        const input = selftestSeq(inlen, inlen);
        const unkeyed = blake2s(input, { dkLen: outlen });
        grandInput.push(unkeyed);
        if (outlen === 32) {
          assert.deepEqual(hash(input), Buffer.from(unkeyed), `hash() of ${inlen} bytes`);
          hashChecks++;
        }
        const key = selftestSeq(outlen, outlen);
        const keyed = blake2s(input, { key, dkLen: outlen });
        grandInput.push(keyed);
        if (outlen === 16) {
          assert.deepEqual(mac(key, input), Buffer.from(keyed), `mac() of ${inlen} bytes`);
          macChecks++;
        }
      }
    }
    assert.equal(grandInput.length, 48);
    assert.deepEqual([hashChecks, macChecks], [6, 6]);
    assert.deepEqual(hash(...grandInput), hex('6a411f08ce25adcdfb02aba641451cec53c598b24f4fc787fbdc88797f4c1dfe'));
  });

  // Expected values from CPython's hashlib.blake2s(m, key=k, digest_size=16);
  // the first one also from `openssl mac ... -macopt size:16 BLAKE2SMAC`.
  it('computes keyed BLAKE2s-128 as an independent implementation does', () => {
    assert.deepEqual(mac(counting(0, 32), counting(0, 116)), hex('072e94ffbfc684bd8ab2a1b9dade2fd5'));
    assert.deepEqual(mac(counting(0xa0, 16), counting(0, 124)), hex('d835ebcffaf3cb6364bde9a25800427d'));
    assert.deepEqual(mac(counting(0, 32), Buffer.alloc(0)), hex('9536f9b267655743dee97b8a670f9f53'));
  });
});

describe('HMAC-BLAKE2s KDF', () => {
  // wireguard-go device/kdf_test.go
  const vectors = [
    {
      key: '746573742d6b6579',
      input: '746573742d696e707574',
      t: [
        '6f0e5ad38daba1bea8a0d213688736f19763239305e0f58aba697f9ffc41c633',
        'df1194df20802a4fe594cde27e92991c8cae66c366e8106aaa937a55fa371e8a',
        'fac6e2745a325f5dc5d11a5b165aad08b0ada28e7b4e666b7c077934a4d76c24',
      ],
    },
    {
      key: '776972656775617264',
      input: '776972656775617264',
      t: [
        '491d43bbfdaa8750aaf535e334ecbfe5129967cd64635101c566d4caefda96e8',
        '1e71a379baefd8a79aa4662212fcafe19a23e2b609a3db7d6bcba8f560e3d25f',
        '31e1ae48bddfbe5de38f295e5452b1909a1b4e38e183926af3780b0c1e1f0160',
      ],
    },
    {
      key: '',
      input: '',
      t: [
        '8387b46bf43eccfcf349552a095d8315c4055beb90208fb1be23b894bc2ed5d0',
        '58a0e5f6faefccf4807bff1f05fa8a9217945762040bcec2f4b4a62bdfe0e86e',
        '0ce6ea98ec548f8e281e93e32db65621c45eb18dc6f0a7ad94178610a2f7338e',
      ],
    },
  ];

  for (const v of vectors) {
    it(`matches wireguard-go's vector for key "${Buffer.from(v.key, 'hex').toString()}"`, () => {
      const key = hex(v.key);
      const input = hex(v.input);
      const want = v.t.map(hex);
      assert.deepEqual(kdf(1, key, input), want.slice(0, 1));
      assert.deepEqual(kdf(2, key, input), want.slice(0, 2));
      assert.deepEqual(kdf(3, key, input), want);
    });
  }
});

describe('X25519: dh() and publicKeyOf()', () => {
  it('matches the RFC 7748 section 5.2 scalar multiplication vectors', () => {
    assert.deepEqual(
      dh(
        hex('a546e36bf0527c9d3b16154b82465edd62144c0ac1fc5a18506a2244ba449ac4'),
        hex('e6db6867583030db3594c1a424b15f7c726624ec26b3353b10a903a6d0ab1c4c'),
      ),
      hex('c3da55379de9c6908e94ea4df28d084f32eccf03491c71f754b4075577a28552'),
    );
    // This u-coordinate has its top bit set: it must be masked, not rejected.
    assert.deepEqual(
      dh(
        hex('4b66e9d4d1b4673c5ad22691957d6af5c11b6421e0ea01d42ca4169e7918ba0d'),
        hex('e5210f12786811d3f4b7959d0538ae2c31dbe7106fc03c3efc4cd549c715a493'),
      ),
      hex('95cbde9476e8907d7aade45cb4b873f88b595a68799fa152e6f8f7647aac7957'),
    );
  });

  it('matches the RFC 7748 section 5.2 iterated vectors (1 and 1,000 rounds)', () => {
    let k: Buffer = Buffer.alloc(32);
    k[0] = 9;
    let u: Buffer = Buffer.from(k);
    for (let i = 1; i <= 1000; i++) {
      const r = dh(k, u);
      assert.ok(r, `round ${i} produced the all-zero output`);
      u = k;
      k = r;
      if (i === 1) assert.deepEqual(k, hex('422c8e7a6227d7bca1350b3e2bb7279f7897b87bb6854b783c60e80311ae3079'));
    }
    assert.deepEqual(k, hex('684cf59ba83309552800ef566f2f4d3c1c3887c49360e3875f2eb94d99532c51'));
  });

  it('matches the RFC 7748 section 6.1 Diffie-Hellman exchange', () => {
    const alicePrivate = hex('77076d0a7318a57d3c16c17251b26645df4c2f87ebc0992ab177fba51db92c2a');
    const bobPrivate = hex('5dab087e624a8a4b79e17f8b83800ee66f3bb1292618b6fd1c2f8b27ff88e0eb');
    const alicePublic = hex('8520f0098930a754748b7ddcb43ef75a0dbf3a0d26381af4eba4a98eaa9b4e6a');
    const bobPublic = hex('de9edb7d7b7dc1b4d35b61c2ece435373f8343c85b78674dadfc7e146f882b4f');
    const shared = hex('4a5d9d5ba4ce2de1728e3bf480350f25e07e21c947d19e3376f09b3c1e161742');
    assert.deepEqual(publicKeyOf(alicePrivate), alicePublic);
    assert.deepEqual(publicKeyOf(bobPrivate), bobPublic);
    assert.deepEqual(dh(alicePrivate, bobPublic), shared);
    assert.deepEqual(dh(bobPrivate, alicePublic), shared);
  });

  it('returns null for low-order public keys and wrong lengths', () => {
    const priv = generatePrivateKey();
    const lowOrder = [
      '0000000000000000000000000000000000000000000000000000000000000000', // u = 0
      '0100000000000000000000000000000000000000000000000000000000000000', // u = 1
      'e0eb7a7c3b41b8ae1656e3faf19fc46ada098deb9c32b1fd866205165f49b800', // order 8
      'ecffffffffffffffffffffffffffffffffffffffffffffffffffffffffffff7f', // u = p - 1
    ];
    for (const u of lowOrder) assert.equal(dh(priv, hex(u)), null, u);
    assert.equal(dh(priv, Buffer.alloc(31, 9)), null);
    assert.equal(dh(Buffer.alloc(31, 9), publicKeyOf(priv)), null);
  });

  it('generates clamped private keys that agree with their public keys', () => {
    const a = generatePrivateKey();
    const b = generatePrivateKey();
    assert.notDeepEqual(a, b);
    for (const k of [a, b]) {
      assert.equal(k[0]! & 7, 0);
      assert.equal(k[31]! & 0xc0, 0x40);
    }
    assert.deepEqual(dh(a, publicKeyOf(b)), dh(b, publicKeyOf(a)));
    const unclamped = Buffer.alloc(32, 0xff);
    clampPrivateKey(unclamped);
    assert.deepEqual(unclamped, hex('f8' + 'ff'.repeat(30) + '7f'));
  });
});

describe('ChaCha20-Poly1305', () => {
  const ladies = Buffer.from(
    "Ladies and Gentlemen of the class of '99: If I could offer you only one tip for the future, sunscreen would be it.",
  );
  const key80 = counting(0x80, 32);
  const ad = hex('50515253c0c1c2c3c4c5c6c7');

  it('matches RFC 8439 section 2.8.2 through the sodium binding', () => {
    const nonce = hex('07000000 4041424344454647');
    const sealed = hex(
      `d31a8d34648e60db7b86afbc53ef7ec2a4aded51296e08fea9e2b5a736ee62d6
       3dbea45e8ca9671282fafb69da92728b1a71de0a9e060b2905d6a5b67ecd3b36
       92ddbd7f2d778b8c9803aee328091b58fab324e4fad675945585808b4831d7bc
       3ff4def08e4b7a9de576d26586cec64b6116
       1ae10b594f09e26a7e902ecbd0600691`,
    );
    const out = Buffer.alloc(ladies.length + 16);
    assert.equal(sodium.crypto_aead_chacha20poly1305_ietf_encrypt(out, ladies, ad, nonce, key80), out.length);
    assert.deepEqual(out, sealed);
    const back = Buffer.alloc(ladies.length);
    assert.equal(sodium.crypto_aead_chacha20poly1305_ietf_decrypt(back, sealed, ad, nonce, key80), ladies.length);
    assert.deepEqual(back, ladies);
  });

  // RFC 8439 Appendix A.5: its nonce is 32 zero bits then 01..08, which is the
  // paper's layout with the little-endian counter 0x0807060504030201.
  it('opens RFC 8439 Appendix A.5 with aeadDecrypt, whose nonce is WireGuard-shaped', () => {
    const key = hex('1c9240a5eb55d38af333888604f6b5f0473917c1402b80099dca5cbc207075c0');
    const counter = 0x0807060504030201n;
    const aad = hex('f33388860000000000004e91');
    const sealed = hex(
      `64a0861575861af460f062c79be643bd5e805cfd345cf389f108670ac76c8cb2
       4c6cfc18755d43eea09ee94e382d26b0bdb7b73c321b0100d4f03b7f355894cf
       332f830e710b97ce98c8a84abd0b948114ad176e008d33bd60f982b1ff37c855
       9797a06ef4f0ef61c186324e2b3506383606907b6a7c02b0f9f6157b53c867e4
       b9166c767b804d46a59b5216cde7a4e99040c5a40433225ee282a1b0a06c523e
       af4534d7f83fa1155b0047718cbc546a0d072b04b3564eea1b422273f548271a
       0bb2316053fa76991955ebd63159434ecebb4e466dae5a1073a6727627097a10
       49e617d91d361094fa68f0ff77987130305beaba2eda04df997b714d6c6f2c29
       a6ad5cb4022b02709b
       eead9d67890cbb22392336fea1851f38`,
    );
    const plaintext = Buffer.from(
      'Internet-Drafts are draft documents valid for a maximum of six months and may be updated, replaced, ' +
        'or obsoleted by other documents at any time. It is inappropriate to use Internet-Drafts as reference ' +
        'material or to cite them other than as /\u201cwork in progress./\u201d',
    );
    assert.deepEqual(aeadDecrypt(key, counter, sealed, aad), plaintext);
    assert.deepEqual(aeadEncrypt(key, counter, plaintext, aad), sealed);
  });

  it('round-trips through aeadEncrypt/aeadDecrypt and refuses anything tampered', () => {
    const counter = 12345n;
    const sealed = aeadEncrypt(key80, counter, ladies, ad);
    assert.equal(sealed.length, ladies.length + 16);
    assert.deepEqual(aeadDecrypt(key80, counter, sealed, ad), ladies);
    assert.deepEqual(aeadDecrypt(key80, 12345, sealed, ad), ladies, 'a number counter is the same nonce');

    for (const i of [0, ladies.length - 1, ladies.length, sealed.length - 1]) {
      const bad = Buffer.from(sealed);
      bad[i]! ^= 1;
      assert.equal(aeadDecrypt(key80, counter, bad, ad), null, `flipped byte ${i}`);
    }
    assert.equal(aeadDecrypt(key80, counter + 1n, sealed, ad), null, 'other counter');
    assert.equal(aeadDecrypt(key80, counter, sealed, Buffer.from('other')), null, 'other ad');
    const otherKey = Buffer.from(key80);
    otherKey[31]! ^= 0x80;
    assert.equal(aeadDecrypt(otherKey, counter, sealed, ad), null, 'other key');
    assert.equal(aeadDecrypt(key80, counter, sealed.subarray(0, 15), ad), null, 'shorter than a tag');

    const empty = aeadEncrypt(key80, 0n, Buffer.alloc(0), Buffer.alloc(0));
    assert.equal(empty.length, 16);
    assert.deepEqual(aeadDecrypt(key80, 0n, empty, Buffer.alloc(0)), Buffer.alloc(0));
  });

  it('takes counters up to 2^64 - 1 as bigint', () => {
    const max = (1n << 64n) - 1n;
    const sealed = aeadEncrypt(key80, max, ladies, ad);
    const out = Buffer.alloc(ladies.length + 16);
    sodium.crypto_aead_chacha20poly1305_ietf_encrypt(out, ladies, ad, hex('00000000 ffffffffffffffff'), key80);
    assert.deepEqual(sealed, out);
  });
});

describe('XChaCha20-Poly1305', () => {
  // draft-irtf-cfrg-xchacha-03, Appendix A.3.1
  const key = counting(0x80, 32);
  const nonce = hex('404142434445464748494a4b4c4d4e4f5051525354555657');
  const ad = hex('50515253c0c1c2c3c4c5c6c7');
  const plaintext = Buffer.from(
    "Ladies and Gentlemen of the class of '99: If I could offer you only one tip for the future, sunscreen would be it.",
  );
  const sealed = hex(
    `bd6d179d3e83d43b9576579493c0e939572a1700252bfaccbed2902c21396cbb
     731c7f1b0b4aa6440bf3a82f4eda7e39ae64c6708c54c216cb96b72e1213b452
     2f8c9ba40db5d945b11b69b982c1bb9e3f3fac2bc369488f76b2383565d3fff9
     21f9664c97637da9768812f615c68b13b52e
     c0875924c1c7987947deafd8780acf49`,
  );

  it('matches draft-irtf-cfrg-xchacha A.3.1 with xaeadEncrypt and xaeadDecrypt', () => {
    assert.deepEqual(xaeadEncrypt(key, nonce, plaintext, ad), sealed);
    assert.deepEqual(xaeadDecrypt(key, nonce, sealed, ad), plaintext);
  });

  it('refuses a tampered ciphertext, nonce or ad', () => {
    const bad = Buffer.from(sealed);
    bad[3]! ^= 0x10;
    assert.equal(xaeadDecrypt(key, nonce, bad, ad), null);
    const otherNonce = Buffer.from(nonce);
    otherNonce[23]! ^= 1;
    assert.equal(xaeadDecrypt(key, otherNonce, sealed, ad), null);
    assert.equal(xaeadDecrypt(key, nonce, sealed, Buffer.alloc(0)), null);
    assert.equal(xaeadDecrypt(key, nonce, sealed.subarray(0, 10), ad), null);
  });
});

// These caught randombytes_buf being called with the wrong binding signature,
// which left every "random" buffer (keys, cookie secrets, nonces) all zeros.
describe('randomness', () => {
  it('fills randomBytes() from the CSPRNG', () => {
    const a = randomBytes(32);
    const b = randomBytes(32);
    assert.equal(a.length, 32);
    assert.notDeepEqual(a, Buffer.alloc(32));
    assert.notDeepEqual(a, b);
    assert.equal(randomBytes(0).length, 0);
    // 4 KiB of uniform bytes hits nearly every value; all zeros hits one.
    assert.ok(new Set(randomBytes(4096)).size > 200);
  });
});

describe('key text formats', () => {
  // RFC 7748 section 6.1's Alice, as `wg genkey` / `wg pubkey` would print her keys.
  const alicePrivateHex = '77076d0a7318a57d3c16c17251b26645df4c2f87ebc0992ab177fba51db92c2a';
  const alicePrivateB64 = 'dwdtCnMYpX08FsFyUbJmRd9ML4frwJkqsXf7pR25LCo=';
  const alicePublicB64 = 'hSDwCYkwp1R0i33ctD73Wg2/Og0mOBr066SpjqqbTmo=';

  it('parses and formats base64 and hex, round trip', () => {
    const priv = parseKeyBase64(alicePrivateB64);
    assert.deepEqual(priv, hex(alicePrivateHex));
    assert.equal(keyToBase64(priv), alicePrivateB64);
    assert.equal(keyToHex(priv), alicePrivateHex);
    assert.deepEqual(parseKeyHex(alicePrivateHex), priv);
    assert.deepEqual(parseKeyHex(alicePrivateHex.toUpperCase()), priv);
    assert.equal(keyToBase64(publicKeyOf(priv)), alicePublicB64);

    for (let i = 0; i < 50; i++) {
      const k = generatePrivateKey();
      assert.deepEqual(parseKeyBase64(keyToBase64(k)), k);
      assert.deepEqual(parseKeyHex(keyToHex(k)), k);
    }
  });

  it('trims surrounding whitespace from base64 (a pasted key or a file with a newline)', () => {
    assert.deepEqual(parseKeyBase64(`  ${alicePrivateB64}\n`), hex(alicePrivateHex));
  });

  it('formats a key that is a view into a larger buffer', () => {
    const big = Buffer.concat([Buffer.alloc(7, 0xee), hex(alicePrivateHex), Buffer.alloc(5, 0xdd)]);
    const view = big.subarray(7, 39);
    assert.equal(keyToBase64(view), alicePrivateB64);
    assert.equal(keyToHex(view), alicePrivateHex);
    assert.equal(keyToBase64(new Uint8Array(view.buffer, view.byteOffset, 32)), alicePrivateB64);
  });

  it('rejects base64 of the wrong length, with bad characters, or not canonical', () => {
    const bad = [
      '',
      alicePrivateB64.slice(0, 43), // no padding
      alicePrivateB64.slice(1), // 43 characters
      'A' + alicePrivateB64, // 45 characters
      alicePrivateB64 + alicePrivateB64,
      alicePublicB64.replace('/', '_'), // URL-safe alphabet
      alicePrivateB64.replace('d', '-'),
      alicePrivateB64.replace('d', '!'),
      alicePrivateB64.replace('w', ' '),
      alicePrivateB64.slice(0, 41) + 'A==', // 31 bytes
      alicePrivateB64.slice(0, 42) + 'p=', // last character carries bits past the 32nd byte
      alicePrivateB64.slice(0, 42) + 'B=',
      alicePrivateB64.slice(0, 42) + '/=',
    ];
    for (const text of bad) {
      assert.throws(
        () => parseKeyBase64(text, 'peer public key'),
        (e: unknown) => e instanceof KeyFormatError && e.name === 'KeyFormatError' && /^peer public key is not/.test(e.message),
        JSON.stringify(text),
      );
    }
  });

  it('rejects hex of the wrong length or with non-hex characters', () => {
    for (const text of [alicePrivateHex.slice(1), alicePrivateHex + '0', alicePrivateHex.replace('7', 'g'), ` ${alicePrivateHex}`, '']) {
      assert.throws(() => parseKeyHex(text), KeyFormatError, JSON.stringify(text));
    }
  });

  it('refuses to format a key that is not 32 bytes', () => {
    assert.throws(() => keyToBase64(Buffer.alloc(31)), /32 bytes, not 31/);
  });
});
