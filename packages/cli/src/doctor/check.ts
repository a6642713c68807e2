// One finding of `wirecage doctor`: what was checked, whether it is fine,
// and, when it is not, what to do about it.
export interface DoctorCheck {
  /** Short name: "user namespaces", "/dev/net/tun", ... */
  name: string;
  ok: boolean;
  /** What was found, in a few words. */
  detail: string;
  /** What to do, when not ok. */
  fix?: string;
}

/** The line `wirecage doctor` prints for a check. */
export function formatCheck(c: DoctorCheck): string {
  return `${c.ok ? 'ok  ' : 'FAIL'}  ${c.name}: ${c.detail}${c.fix ? `; ${c.fix}` : ''}`;
}
