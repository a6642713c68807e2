import { describeErrno } from '@wirecage/napi-glue';

export { describeErrno };

/**
 * A failed system call from the native layer. `code` is the errno name
 * ('EACCES'), `errno` its positive number, `syscall` the failing step
 * ('open', 'setns', 'ioctl(TUNSETIFF)', 'read', 'write', ...), `path` the
 * device path when opening it failed.
 */
export class TunError extends Error {
  override readonly name = 'TunError';
  readonly code: string;
  readonly errno: number;
  readonly syscall: string;
  path: string | undefined;

  constructor(errno: number, syscall: string, context = '') {
    const [code, text] = describeErrno(errno);
    super(`${context ? `${context}: ` : ''}${syscall} failed: ${code} (${text})`);
    this.code = code;
    this.errno = errno;
    this.syscall = syscall;
  }
}

export interface OpenContext {
  devicePath: string;
  name: string;
  netnsFd: number | undefined;
  mtu: number | undefined;
}

/** What a user can do about an error from opening a TUN, by failing step and errno. */
function hint(err: TunError, ctx: OpenContext): string | undefined {
  const { devicePath: dev, name } = ctx;
  switch (`${err.syscall} ${err.code}`) {
    case 'open ENOENT':
      return `${dev} does not exist: load the TUN driver (modprobe tun) or create the node (mknod ${dev} c 10 200); a container needs it passed in (--device /dev/net/tun)`;
    case 'open EACCES':
      return `${dev} is not readable and writable by uid ${process.getuid?.() ?? '?'}: TUN needs read+write access to it (it is normally mode 0666)`;
    case 'open EPERM':
      return `opening ${dev} was refused: a container's device policy (cgroup) may deny it`;
    case 'open ENXIO':
    case 'open ENODEV':
      return `${dev} exists but no TUN driver answers it: load the driver (modprobe tun)`;
    case 'setns EBADF':
    case 'setns EINVAL':
      return `netnsFd ${ctx.netnsFd} is not an open network namespace (open /run/netns/<name> or /proc/<pid>/ns/net)`;
    case 'setns EPERM':
      return 'entering another network namespace needs CAP_SYS_ADMIN';
    case 'ioctl(TUNSETIFF) EPERM':
      return 'creating a TUN interface needs CAP_NET_ADMIN in the user namespace that owns the network namespace';
    case 'ioctl(TUNSETIFF) EBUSY':
      return `an interface named '${name}' already exists in that network namespace`;
    case 'ioctl(TUNSETIFF) EINVAL':
      return `'${name}' is not a usable TUN name there (an invalid name, or an existing interface that is not a multi-queue TUN)`;
    case 'ioctl(SIOCSIFMTU) EINVAL':
      return `the interface refuses MTU ${ctx.mtu} (a TUN accepts 68 to 65535)`;
    default:
      return undefined;
  }
}

/** Adds the device path and an actionable hint to an error from opening a TUN. */
export function explainOpenError(err: unknown, ctx: OpenContext): unknown {
  if (!(err instanceof TunError)) return err;
  if (err.syscall === 'open') {
    err.path = ctx.devicePath;
    err.message = err.message.replace(': open failed', `: open ${ctx.devicePath} failed`);
  }
  const h = hint(err, ctx);
  if (h) err.message += `. ${h}`;
  return err;
}
