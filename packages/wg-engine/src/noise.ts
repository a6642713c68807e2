// Noise_IKpsk2_25519_ChaChaPoly_BLAKE2s as WireGuard uses it (whitepaper 5.4.2
// to 5.4.4). These functions build and consume the two handshake messages and
// derive transport keys; they touch only the handshake state passed in and
// leave it unchanged when a message is rejected. mac1/mac2 are added and
// checked elsewhere (cookie.ts); indices come from the caller.
import {
  CONSTRUCTION,
  IDENTIFIER,
  KEY_LEN,
  MESSAGE_INITIATION,
  MESSAGE_INITIATION_SIZE,
  MESSAGE_RESPONSE,
  MESSAGE_RESPONSE_SIZE,
  TIMESTAMP_LEN,
  HANDSHAKE_INITIATION_RATE_MS,
} from './constants.js';
import { aeadDecrypt, aeadEncrypt, dh, generatePrivateKey, hash, kdf, publicKeyOf, wipe } from './crypto/primitives.js';
import { Initiation, Response, newMessage, readU32LE, writeU32LE } from './messages.js';
import { tai64n, timestampAfter } from './tai64n.js';
import type { DropReason } from './stats.js';

const EMPTY = Buffer.alloc(0);
export const INITIAL_CHAIN_KEY = hash(Buffer.from(CONSTRUCTION));
export const INITIAL_HASH = hash(INITIAL_CHAIN_KEY, Buffer.from(IDENTIFIER));

export enum HandshakeState {
  Zeroed = 0,
  InitiationCreated = 1,
  InitiationConsumed = 2,
  ResponseCreated = 3,
  ResponseConsumed = 4,
}

/** The device's own static key pair. */
export interface StaticIdentity {
  readonly privateKey: Buffer;
  readonly publicKey: Buffer;
}

/** Per-peer handshake state (one per peer, as in the kernel's struct noise_handshake). */
export class Handshake {
  state = HandshakeState.Zeroed;
  hash: Buffer = Buffer.alloc(KEY_LEN);
  chainingKey: Buffer = Buffer.alloc(KEY_LEN);
  ephemeralPrivate: Buffer | null = null;
  remoteEphemeral: Buffer = Buffer.alloc(KEY_LEN);
  localIndex = 0;
  remoteIndex = 0;
  presharedKey: Buffer = Buffer.alloc(KEY_LEN);
  /** DH(our static, their static); null when their key is of small order (the peer can never handshake). */
  precomputedStaticStatic: Buffer | null = null;
  latestTimestamp: Buffer = Buffer.alloc(TIMESTAMP_LEN);
  lastInitiationConsumption = -Infinity;

  constructor(readonly remoteStatic: Buffer) {}

  /** Recomputes DH(static, static) after the device's private key changes. */
  precompute(local: StaticIdentity | null): void {
    wipe(this.precomputedStaticStatic);
    this.precomputedStaticStatic = local ? dh(local.privateKey, this.remoteStatic) : null;
  }

  clear(): void {
    wipe(this.hash, this.chainingKey, this.ephemeralPrivate, this.remoteEphemeral);
    this.ephemeralPrivate = null;
    this.state = HandshakeState.Zeroed;
    this.localIndex = 0;
    this.remoteIndex = 0;
  }
}

function mixHash(h: Buffer, data: Uint8Array): Buffer {
  return hash(h, data);
}

/** Builds an initiation (without macs) into a new 148-byte message; the handshake moves to InitiationCreated. */
export function createInitiation(local: StaticIdentity, hs: Handshake, localIndex: number, wallMs: number): Buffer | null {
  if (!hs.precomputedStaticStatic) return null;
  const msg = newMessage(MESSAGE_INITIATION, MESSAGE_INITIATION_SIZE);
  writeU32LE(msg, Initiation.SENDER, localIndex);

  let c = INITIAL_CHAIN_KEY;
  let h = mixHash(INITIAL_HASH, hs.remoteStatic);

  const ePriv = generatePrivateKey();
  const ePub = publicKeyOf(ePriv);
  ePub.copy(msg, Initiation.EPHEMERAL);
  [c] = kdf(1, c, ePub);
  h = mixHash(h, ePub);

  const es = dh(ePriv, hs.remoteStatic);
  if (!es) {
    wipe(ePriv);
    return null;
  }
  let k: Buffer;
  [c, k] = kdf(2, c, es);
  const encStatic = aeadEncrypt(k, 0, local.publicKey, h);
  encStatic.copy(msg, Initiation.STATIC);
  h = mixHash(h, encStatic);

  [c, k] = kdf(2, c, hs.precomputedStaticStatic);
  const encTs = aeadEncrypt(k, 0, tai64n(wallMs), h);
  encTs.copy(msg, Initiation.TIMESTAMP);
  h = mixHash(h, encTs);
  wipe(es, k);

  commitCreated(hs, HandshakeState.InitiationCreated, ePriv, h, c, localIndex);
  return msg;
}

/** Records a message we built: our ephemeral key, the running hash and chaining key, our index. */
function commitCreated(hs: Handshake, state: HandshakeState, ePriv: Buffer, h: Buffer, c: Buffer, localIndex: number): void {
  wipe(hs.ephemeralPrivate);
  hs.ephemeralPrivate = ePriv;
  hs.hash = h;
  hs.chainingKey = c;
  hs.localIndex = localIndex;
  hs.state = state;
}

export type ConsumeResult<T> = { ok: true; value: T } | { ok: false; reason: DropReason };

/**
 * Consumes an initiation. lookup maps the decrypted static key to the peer's
 * handshake; nowMs (monotonic) drives the 50-per-second flood limit.
 */
export function consumeInitiation(
  local: StaticIdentity,
  msg: Uint8Array,
  lookup: (remoteStatic: Buffer) => Handshake | undefined,
  nowMs: number,
): ConsumeResult<Handshake> {
  let c = INITIAL_CHAIN_KEY;
  let h = mixHash(INITIAL_HASH, local.publicKey);
  const ePub = Buffer.from(msg.subarray(Initiation.EPHEMERAL, Initiation.EPHEMERAL + KEY_LEN));
  [c] = kdf(1, c, ePub);
  h = mixHash(h, ePub);

  const es = dh(local.privateKey, ePub);
  if (!es) return { ok: false, reason: 'low-order-point' };
  let k: Buffer;
  [c, k] = kdf(2, c, es);
  wipe(es);
  const encStatic = msg.subarray(Initiation.STATIC, Initiation.TIMESTAMP);
  const remoteStatic = aeadDecrypt(k, 0, encStatic, h);
  if (!remoteStatic) return { ok: false, reason: 'handshake-decrypt' };
  h = mixHash(h, encStatic);

  const hs = lookup(remoteStatic);
  if (!hs) return { ok: false, reason: 'unknown-peer' };
  if (!hs.precomputedStaticStatic) return { ok: false, reason: 'low-order-point' };

  [c, k] = kdf(2, c, hs.precomputedStaticStatic);
  const encTs = msg.subarray(Initiation.TIMESTAMP, Initiation.MAC1);
  const timestamp = aeadDecrypt(k, 0, encTs, h);
  wipe(k);
  if (!timestamp) return { ok: false, reason: 'handshake-decrypt' };
  h = mixHash(h, encTs);

  if (!timestampAfter(timestamp, hs.latestTimestamp)) return { ok: false, reason: 'timestamp-replay' };
  if (nowMs - hs.lastInitiationConsumption < HANDSHAKE_INITIATION_RATE_MS) return { ok: false, reason: 'initiation-flood' };

  // Every check passed: only now does the peer's state change.
  hs.latestTimestamp = timestamp;
  hs.lastInitiationConsumption = nowMs;
  wipe(hs.ephemeralPrivate, hs.hash, hs.chainingKey);
  hs.ephemeralPrivate = null;
  hs.remoteEphemeral = ePub;
  hs.remoteIndex = readU32LE(msg, Initiation.SENDER);
  hs.hash = h;
  hs.chainingKey = c;
  hs.state = HandshakeState.InitiationConsumed;
  return { ok: true, value: hs };
}

/**
 * The response's key schedule after its ephemeral, the same on both sides:
 * mix DH(e,e) and DH(s,e), then the preshared key. Wipes the DH results.
 */
function responseKeys(c: Buffer, h: Buffer, ee: Buffer, se: Buffer, psk: Buffer): { c: Buffer; h: Buffer; k: Buffer } {
  [c] = kdf(1, c, ee);
  [c] = kdf(1, c, se);
  wipe(ee, se);
  const [c2, tau, k] = kdf(3, c, psk);
  h = mixHash(h, tau);
  wipe(tau);
  return { c: c2, h, k };
}

/** Builds a response (without macs) to the initiation the handshake consumed. */
export function createResponse(hs: Handshake, localIndex: number): Buffer | null {
  if (hs.state !== HandshakeState.InitiationConsumed) return null;
  const msg = newMessage(MESSAGE_RESPONSE, MESSAGE_RESPONSE_SIZE);
  writeU32LE(msg, Response.SENDER, localIndex);
  writeU32LE(msg, Response.RECEIVER, hs.remoteIndex);

  let c = hs.chainingKey;
  let h = hs.hash;
  const ePriv = generatePrivateKey();
  const ePub = publicKeyOf(ePriv);
  ePub.copy(msg, Response.EPHEMERAL);
  [c] = kdf(1, c, ePub);
  h = mixHash(h, ePub);

  const ee = dh(ePriv, hs.remoteEphemeral);
  const se = dh(ePriv, hs.remoteStatic);
  if (!ee || !se) {
    wipe(ePriv, ee, se);
    return null;
  }
  let k: Buffer;
  ({ c, h, k } = responseKeys(c, h, ee, se, hs.presharedKey));
  const encEmpty = aeadEncrypt(k, 0, EMPTY, h);
  encEmpty.copy(msg, Response.EMPTY);
  h = mixHash(h, encEmpty);
  wipe(k);

  commitCreated(hs, HandshakeState.ResponseCreated, ePriv, h, c, localIndex);
  return msg;
}

/** Consumes a response to our initiation; hs must be the handshake the receiver index named. */
export function consumeResponse(local: StaticIdentity, hs: Handshake, msg: Uint8Array): ConsumeResult<Handshake> {
  if (hs.state !== HandshakeState.InitiationCreated || !hs.ephemeralPrivate) {
    return { ok: false, reason: 'unexpected-response' };
  }
  let c = hs.chainingKey;
  let h = hs.hash;
  const ePub = Buffer.from(msg.subarray(Response.EPHEMERAL, Response.EPHEMERAL + KEY_LEN));
  [c] = kdf(1, c, ePub);
  h = mixHash(h, ePub);

  const ee = dh(hs.ephemeralPrivate, ePub);
  const se = dh(local.privateKey, ePub);
  if (!ee || !se) {
    wipe(ee, se);
    return { ok: false, reason: 'low-order-point' };
  }
  let k: Buffer;
  ({ c, h, k } = responseKeys(c, h, ee, se, hs.presharedKey));
  const encEmpty = msg.subarray(Response.EMPTY, Response.MAC1);
  const ok = aeadDecrypt(k, 0, encEmpty, h);
  wipe(k);
  if (!ok) return { ok: false, reason: 'handshake-decrypt' };
  h = mixHash(h, encEmpty);

  wipe(hs.hash, hs.chainingKey);
  hs.remoteEphemeral = ePub;
  hs.remoteIndex = readU32LE(msg, Response.SENDER);
  hs.hash = h;
  hs.chainingKey = c;
  hs.state = HandshakeState.ResponseConsumed;
  return { ok: true, value: hs };
}

export interface SessionKeys {
  sendKey: Buffer;
  receiveKey: Buffer;
  isInitiator: boolean;
  localIndex: number;
  remoteIndex: number;
}

/** Derives transport keys after ResponseConsumed (initiator) or ResponseCreated (responder) and wipes the handshake. */
export function deriveSession(hs: Handshake): SessionKeys | null {
  let isInitiator: boolean;
  if (hs.state === HandshakeState.ResponseConsumed) isInitiator = true;
  else if (hs.state === HandshakeState.ResponseCreated) isInitiator = false;
  else return null;
  const [t1, t2] = kdf(2, hs.chainingKey, EMPTY);
  const keys: SessionKeys = {
    sendKey: isInitiator ? t1 : t2,
    receiveKey: isInitiator ? t2 : t1,
    isInitiator,
    localIndex: hs.localIndex,
    remoteIndex: hs.remoteIndex,
  };
  hs.clear();
  return keys;
}
