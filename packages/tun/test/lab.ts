// This package's tests build on the project's one lab (@wirecage/netns/lab):
// one namespace per suite, removed by a synchronous destroy() in after().
import { Lab, type LabNetns } from '@wirecage/netns/lab';

export { fdFlags, hostLinkNames, netnsOfEveryThread, O_CLOEXEC, O_NONBLOCK, waitFor } from '@wirecage/netns/lab';

export type NetnsLab = LabNetns;
export const NetnsLab = {
  create: (): NetnsLab => new Lab().namespace('tun'),
};
