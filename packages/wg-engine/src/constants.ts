// Protocol constants from the WireGuard whitepaper (section 6.1), with the
// values the Linux kernel (messages.h) and wireguard-go (constants.go) agree on.

export const REKEY_AFTER_MESSAGES = 1n << 60n;
export const REJECT_AFTER_MESSAGES = (1n << 64n) - (1n << 13n) - 1n;

// Seconds, as in the paper; the engine works in milliseconds internally.
export const REKEY_AFTER_TIME = 120;
export const REJECT_AFTER_TIME = 180;
export const REKEY_ATTEMPT_TIME = 90;
export const REKEY_TIMEOUT = 5;
export const REKEY_TIMEOUT_JITTER_MAX_MS = 334; // jitter drawn from [0, 334) ms
export const KEEPALIVE_TIMEOUT = 10;
export const COOKIE_REFRESH_TIME = 120;
export const HANDSHAKE_INITIATION_RATE_MS = 1000 / 50; // at most 50 initiations/s per peer
export const MAX_TIMER_HANDSHAKES = REKEY_ATTEMPT_TIME / REKEY_TIMEOUT; // 18 retries

export const MAX_STAGED_PACKETS = 128;
export const MAX_PEERS = 1 << 20;

// Replay window: the kernel's COUNTER_BITS_TOTAL; the usable window is one
// 32-bit block smaller (RFC 6479: the block being rotated in is never valid).
export const COUNTER_BITS_TOTAL = 8192;

// Under load: the handshake queue is 1/8 full, and stays "under load" for 1 s.
export const MAX_QUEUED_HANDSHAKES = 4096;
export const UNDER_LOAD_QUEUE_THRESHOLD = MAX_QUEUED_HANDSHAKES / 8;
export const UNDER_LOAD_AFTER_TIME_MS = 1000;

// Per-source handshake rate limiter (kernel ratelimiter.c): 20 packets/s with a burst of 5.
export const RATELIMIT_PACKETS_PER_SECOND = 20;
export const RATELIMIT_PACKETS_BURSTABLE = 5;

export const MESSAGE_INITIATION = 1;
export const MESSAGE_RESPONSE = 2;
export const MESSAGE_COOKIE_REPLY = 3;
export const MESSAGE_TRANSPORT = 4;

export const KEY_LEN = 32;
export const AEAD_TAG_LEN = 16;
export const TIMESTAMP_LEN = 12;
export const COOKIE_LEN = 16;
export const COOKIE_NONCE_LEN = 24;

export const MESSAGE_INITIATION_SIZE = 148;
export const MESSAGE_RESPONSE_SIZE = 92;
export const MESSAGE_COOKIE_REPLY_SIZE = 64;
export const MESSAGE_TRANSPORT_HEADER_SIZE = 16;
export const MESSAGE_TRANSPORT_MIN_SIZE = MESSAGE_TRANSPORT_HEADER_SIZE + AEAD_TAG_LEN; // a keepalive
export const MESSAGE_PADDING_MULTIPLE = 16;

// The largest UDP payload we accept; anything larger is dropped and counted.
export const MAX_MESSAGE_SIZE = 65535;
// The largest inner packet (IPv4/IPv6 total length is 16 bits).
export const MAX_CONTENT_SIZE = MAX_MESSAGE_SIZE - MESSAGE_TRANSPORT_MIN_SIZE;

export const CONSTRUCTION = 'Noise_IKpsk2_25519_ChaChaPoly_BLAKE2s';
export const IDENTIFIER = 'WireGuard v1 zx2c4 Jason@zx2c4.com';
export const LABEL_MAC1 = 'mac1----';
export const LABEL_COOKIE = 'cookie--';
