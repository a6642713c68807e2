// mac1/mac2 and cookie replies (whitepaper 5.4.4 and 5.4.7).
//
// CookieChecker is the device's responder side: it checks mac1 against our own
// public key, mints cookies bound to a sender's address *and* port from a
// secret rotated every two minutes, and checks mac2 under load.
// CookieGenerator is the per-peer initiator side: it adds mac1 (and mac2 while
// it holds a fresh cookie from that peer) and consumes cookie replies.
import {
  COOKIE_LEN,
  COOKIE_NONCE_LEN,
  COOKIE_REFRESH_TIME,
  LABEL_COOKIE,
  LABEL_MAC1,
  MESSAGE_COOKIE_REPLY,
  MESSAGE_COOKIE_REPLY_SIZE,
  MESSAGE_INITIATION,
  REKEY_TIMEOUT,
} from './constants.js';
import { constantTimeEqual, hash, mac, randomBytes, xaeadDecrypt, xaeadEncrypt, wipe } from './crypto/primitives.js';
import { CookieReply, Initiation, Response, newMessage, readU32LE, writeU32LE } from './messages.js';
import type { Clock } from './clock.js';
import type { Endpoint } from './endpoint.js';

const COOKIE_SECRET_MAX_AGE_MS = COOKIE_REFRESH_TIME * 1000;
// A cookie is trusted for slightly less than the secret's life, since the
// responder may rotate its secret just after minting it.
const COOKIE_VALID_MS = (COOKIE_REFRESH_TIME - REKEY_TIMEOUT) * 1000;

function macOffsets(msg: Uint8Array): { mac1: number; mac2: number } {
  return msg[0] === MESSAGE_INITIATION ? { mac1: Initiation.MAC1, mac2: Initiation.MAC2 } : { mac1: Response.MAC1, mac2: Response.MAC2 };
}

export function mac1Key(publicKey: Uint8Array): Buffer {
  return hash(Buffer.from(LABEL_MAC1), publicKey);
}

export function cookieKey(publicKey: Uint8Array): Buffer {
  return hash(Buffer.from(LABEL_COOKIE), publicKey);
}

export class CookieChecker {
  private mac1Key: Buffer = Buffer.alloc(32);
  private cookieKey: Buffer = Buffer.alloc(32);
  private secret: Buffer = Buffer.alloc(32);
  private secretBirth = -Infinity;

  constructor(private readonly clock: Clock) {}

  /** Re-derives the keys from our public key (on every private key change). */
  init(publicKey: Uint8Array | null): void {
    if (!publicKey) {
      this.mac1Key.fill(0);
      this.cookieKey.fill(0);
      return;
    }
    this.mac1Key = mac1Key(publicKey);
    this.cookieKey = cookieKey(publicKey);
  }

  checkMac1(msg: Uint8Array): boolean {
    const { mac1 } = macOffsets(msg);
    return constantTimeEqual(mac(this.mac1Key, msg.subarray(0, mac1)), msg.subarray(mac1, mac1 + COOKIE_LEN));
  }

  checkMac2(msg: Uint8Array, src: Endpoint): boolean {
    const { mac2 } = macOffsets(msg);
    const cookie = this.cookieFor(src);
    return constantTimeEqual(mac(cookie, msg.subarray(0, mac2)), msg.subarray(mac2, mac2 + COOKIE_LEN));
  }

  /** A cookie reply to msg (an initiation or response) that came from src. */
  createReply(msg: Uint8Array, src: Endpoint): Buffer {
    const { mac1 } = macOffsets(msg);
    const reply = newMessage(MESSAGE_COOKIE_REPLY, MESSAGE_COOKIE_REPLY_SIZE);
    // The receiver of the reply is the sender index of the message it answers.
    writeU32LE(reply, CookieReply.RECEIVER, readU32LE(msg, 4));
    const nonce = randomBytes(COOKIE_NONCE_LEN);
    nonce.copy(reply, CookieReply.NONCE);
    const cookie = this.cookieFor(src);
    xaeadEncrypt(this.cookieKey, nonce, cookie, msg.subarray(mac1, mac1 + COOKIE_LEN)).copy(reply, CookieReply.COOKIE);
    return reply;
  }

  private cookieFor(src: Endpoint): Buffer {
    const now = this.clock.now();
    if (now - this.secretBirth >= COOKIE_SECRET_MAX_AGE_MS) {
      wipe(this.secret);
      this.secret = randomBytes(32);
      this.secretBirth = now;
    }
    return mac(this.secret, src.bytes);
  }
}

export class CookieGenerator {
  private mac1Key: Buffer;
  private cookieKey: Buffer;
  private cookie: Buffer = Buffer.alloc(COOKIE_LEN);
  private cookieBirth = -Infinity;
  private lastMac1: Buffer | null = null;

  constructor(
    remotePublicKey: Uint8Array,
    private readonly clock: Clock,
  ) {
    this.mac1Key = mac1Key(remotePublicKey);
    this.cookieKey = cookieKey(remotePublicKey);
  }

  /** Fills mac1 and (with a fresh cookie) mac2 of an outgoing handshake message in place. */
  addMacs(msg: Buffer): void {
    const { mac1, mac2 } = macOffsets(msg);
    const m1 = mac(this.mac1Key, msg.subarray(0, mac1));
    m1.copy(msg, mac1);
    this.lastMac1 = m1;
    if (this.clock.now() - this.cookieBirth < COOKIE_VALID_MS) {
      mac(this.cookie, msg.subarray(0, mac2)).copy(msg, mac2);
    } else {
      msg.fill(0, mac2, mac2 + COOKIE_LEN);
    }
  }

  /** Takes a cookie reply addressed to one of our handshake messages; false if it does not decrypt. */
  consumeReply(reply: Uint8Array): boolean {
    if (!this.lastMac1) return false;
    const nonce = reply.subarray(CookieReply.NONCE, CookieReply.NONCE + COOKIE_NONCE_LEN);
    const cookie = xaeadDecrypt(this.cookieKey, nonce, reply.subarray(CookieReply.COOKIE), this.lastMac1);
    if (!cookie) return false;
    wipe(this.cookie);
    this.cookie = cookie;
    this.cookieBirth = this.clock.now();
    // A cookie answers one message; a second reply to the same mac1 is a replay.
    this.lastMac1 = null;
    return true;
  }

  get hasFreshCookie(): boolean {
    return this.clock.now() - this.cookieBirth < COOKIE_VALID_MS;
  }
}
