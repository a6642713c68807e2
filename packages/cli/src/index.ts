// wirecage as a library: parse a wg-quick file and run a command in a cage.
export { WirecageError } from './errors.js';
export { parseWgQuick, ConfigError, type WgQuickConfig, type PeerConfigFile } from './config/wg-quick.js';
export { buildSpec, RunError, type RunOptions } from './cage/from-config.js';
export { launchCage } from './cage/launch.js';
export { EXIT_WIRECAGE_FAILED, EXIT_NOT_EXECUTABLE, EXIT_NOT_FOUND, type CageSpec, type CagePeerSpec } from './cage/spec.js';
export { loadWgQuick, type LoadedConfig } from './config/load.js';
export { summarizeConfig } from './config/summary.js';
