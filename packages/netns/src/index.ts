export { NetnsError, withContext } from './errors.js';
export { createNetns, pipe } from './netns.js';
export { parseCidr, type Cidr } from './cidr.js';
export { Rtnl, IFF_UP, IFF_LOOPBACK, IFA_F_NODAD, RT_TABLE_MAIN, type Link, type Address, type Route, type RouteSpec } from './rtnl.js';
export {
  spawnInCage,
  CagedProcess,
  exitStatusToCode,
  exitCodeForSpawnError,
  type CageSpawnOptions,
  cageSetupProgram,
  type BindMount,
  type PrivateDir,
  type CommandUserNamespace,
  type ExitStatus,
} from './spawn.js';
export { userNamespaceHelper, userNamespaceCommand, diagnoseUserNamespaces, type UserNamespaceDiagnosisOptions } from './userns.js';
export { execWithInput } from './exec.js';
export { CleanupStack } from './cleanup-stack.js';
export {
  launchStage2,
  execStage2,
  readSpec,
  SpecError,
  STAGE2_SPEC_FD,
  STAGE2_FIRST_EXTRA_FD,
  type Stage2Options,
  type LaunchStage2Options,
} from './stage2-launch.js';
export {
  socketInNetns,
  bindSocket,
  listenSocket,
  socketAddress,
  recvWithOrigDst,
  connectSocket,
  sendOnSocket,
  recvSocketError,
  watchReadable,
  type NetnsSocketOptions,
  type OrigDstDatagram,
  type SocketErrorEntry,
} from './sockets.js';
export { NetlinkMonitor, type NetlinkChange, type NetlinkMonitorOptions } from './netlink-monitor.js';
export { NfnlSocket, writeNetnsSysctl, type NfnlRead } from './nfnetlink.js';
export { sendUnixDatagram, bindUnixDatagram, receiveUnixDatagram, type UnixDatagram } from './unix-dgram.js';
export { icmpSocketInNetns, icmpReceive, icmpSend, type IcmpSocketOptions, type IcmpMessage } from './icmp.js';
export {
  joinProgram,
  holdProgram,
  execJoin,
  spawnJoin,
  pidfdOpen,
  flockExclusive,
  peerCredentials,
  watchExit,
  type JoinPlan,
  type PeerCredentials,
} from './join.js';
