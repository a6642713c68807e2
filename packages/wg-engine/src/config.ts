// @wirecage/wg-engine/config: what configuration code needs of the engine and
// nothing of the protocol: key text and key files, CIDRs and the AllowedIPs
// table, host:port. It loads no native code (the main entry loads
// sodium-native), so a CLI parses and checks its configuration without paying
// for the crypto it may never use.
export { parseHostPort, formatHostPort, isHostName, HostPortError, type HostPort, type HostPortOptions } from './host-port.js';
export { AllowedIps, parseCidr, parseIp, formatCidr, formatIp, type Cidr, type IpFamily, type ParseCidrOptions } from './allowed-ips.js';
export { parseKeyBase64, parseKeyHex, keyToBase64, keyToHex, KeyFormatError } from './crypto/keys.js';
export {
  writeSecretFileAtomic,
  readSecretFile,
  readKeyFile,
  SecretFileError,
  type WriteSecretOptions,
  type SecretText,
} from './crypto/key-file.js';
