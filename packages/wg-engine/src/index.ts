// @wirecage/wg-engine: the WireGuard protocol in TypeScript on sodium-native.
// Nothing here loads @wirecage/tun or piscina: the data plane that does is
// the subpath @wirecage/wg-engine/data-plane (data-plane.ts).
export * from './constants.js';
export { Device, type DeviceIO, type DeviceOptions, type PeerConfig, type DeviceEvents } from './device.js';
export { Peer } from './peer.js';
export { Endpoint } from './endpoint.js';
export { parseHostPort, formatHostPort, isHostName, HostPortError, type HostPort, type HostPortOptions } from './host-port.js';
export { AllowedIps, parseCidr, parseIp, formatCidr, formatIp, type Cidr, type IpFamily, type ParseCidrOptions } from './allowed-ips.js';
export { FakeClock, systemClock, LazyTimer, type Clock, type TimerHandle } from './clock.js';
export {
  createLogger,
  parseLogFormat,
  silentLogger,
  LOG_FORMATS,
  type Logger,
  type LogLevel,
  type LogFormat,
  type LogFields,
  type LoggerOptions,
} from './log.js';
export { DropCounters, DROP_REASONS, type DropReason } from './stats.js';
export { KeypairTable, Keypair, KEYPAIR_SLOT_BYTES } from './keypair.js';
export { ReplayWindow, REPLAY_WINDOW_BYTES, REPLAY_WINDOW_SIZE } from './replay.js';
export { encryptTransport, decryptTransport, paddedLength, DECRYPT_FAILED, DECRYPT_REPLAY } from './data/transport.js';
export { UdpBind, type UdpBindOptions } from './udp.js';
export { UapiServer, DEFAULT_UAPI_DIR, uapiRequest, type UapiServerOptions } from './uapi-server.js';
export { uapiGet, uapiSet, UapiError, type UapiHooks } from './uapi.js';
export { generatePrivateKey, publicKeyOf } from './crypto/primitives.js';
export { parseKeyBase64, parseKeyHex, keyToBase64, keyToHex, KeyFormatError } from './crypto/keys.js';
export {
  writeSecretFileAtomic,
  readSecretFile,
  readKeyFile,
  SecretFileError,
  type WriteSecretOptions,
  type SecretText,
} from './crypto/key-file.js';
export { tai64n } from './tai64n.js';
export {
  Handshake,
  HandshakeState,
  createInitiation,
  consumeInitiation,
  createResponse,
  consumeResponse,
  deriveSession,
  type StaticIdentity,
  type SessionKeys,
} from './noise.js';
export { CookieChecker, CookieGenerator } from './cookie.js';
export { RateLimiter } from './ratelimiter.js';
export { type MessageKind } from './messages.js';
export { classify } from './data/packet-rules.js';
export {
  KEY_PROOF_HEADER,
  KEY_PROOF_LABEL,
  KEY_PROOF_MAX_SKEW_S,
  KEY_PROOF_NONCE_LEN,
  KEY_PROOF_MAC_LEN,
  keyProofKey,
  keyProofMac,
  keyProofHeader,
  formatKeyProof,
  parseKeyProof,
  type KeyProofFields,
  type ParsedKeyProof,
} from './crypto/key-proof.js';
