// What the demo's caged command shows and checks: each check prints what it
// sees, then "ok: NAME" or "FAILED: NAME". The command's exit status is the
// number of the first failed check (1-based), 0 when all passed, so that
// `wirecage demo` can name it; wirecage's own statuses (125-127, 128+N) are
// far above the number of checks.
import { CLIENT_LINK, WEB_NAME, WEB_PORT } from './lab.js';

export interface DemoCheck {
  name: string;
  /** Shell that prints what it sees; its status is the check's. */
  sh: string;
}

/** Prints OUT indented, then succeeds when STATUS was 0 (curl's, not the indenting pipe's). */
const indented = (cmd: string) => `out=$(${cmd} 2>&1); s=$?; printf '%s\\n' "$out" | sed "s/^/  /"; [ "$s" -eq 0 ]`;
const url = `http://${WEB_NAME}:${WEB_PORT}/`;

export const DEMO_CHECKS: DemoCheck[] = [
  {
    name: 'the cage has only lo and the tunnel',
    sh: [
      'echo "interfaces:"; ip -brief addr | awk \'{ printf "  %s", $1; for (i = 3; i <= NF; i++) printf " %s", $i; print "" }\'',
      'echo "routes:"; { ip route; ip -6 route; } | sed "s/^/  /"',
      '[ "$(ip -brief link | awk \'{ print $1 }\' | sort | tr "\\n" " ")" = "lo $WIRECAGE_TUN " ]',
    ].join('; '),
  },
  {
    name: `${WEB_NAME} resolves to IPv4 and IPv6 through the server's DNS forwarder`,
    sh: [
      'echo "resolvers (from the server):"; awk \'$1 == "nameserver" { print "  " $2 }\' /etc/resolv.conf',
      `echo "${WEB_NAME} resolves (through the server's DNS forwarder) to:"`,
      `out=$(getent ahosts ${WEB_NAME} | awk '$2 == "STREAM" { print "  " $1 }'); printf '%s\\n' "$out"`,
      'printf "%s" "$out" | grep -q "\\." && printf "%s" "$out" | grep -q ":"',
    ].join('; '),
  },
  {
    name: `GET ${url} over IPv4 through the server's NAT`,
    sh: `echo "GET ${url} over IPv4:"; ${indented(`curl -4 -sS --max-time 5 ${url}`)}`,
  },
  {
    name: `GET ${url} over IPv6 through the server's NAT`,
    sh: `echo "GET ${url} over IPv6:"; ${indented(`curl -6 -sS --max-time 5 ${url}`)}`,
  },
  {
    name: "a web server on the cage's own host is unreachable outside the tunnel",
    sh: [
      `echo "a web server on the cage's own host, ${CLIENT_LINK}:${WEB_PORT}, outside the tunnel:"`,
      `if curl -sS --max-time 3 -o /dev/null http://${CLIENT_LINK}:${WEB_PORT}/ 2>/dev/null; then echo "  reachable (LEAK)"; false; else echo "  unreachable, as it should be"; fi`,
    ].join('; '),
  },
];

/** Information only: who the command runs as, and what wirecage tells it. */
const PREAMBLE = ['echo "inside the cage: uid $(id -u), WIRECAGE=$WIRECAGE WIRECAGE_TUN=$WIRECAGE_TUN"'];

/** The caged command's script. */
export function demoScript(checks: DemoCheck[] = DEMO_CHECKS): string {
  const lines = [...PREAMBLE, 'first=0'];
  checks.forEach((c, i) => {
    const name = c.name.replace(/'/g, "'\\''");
    lines.push(`if { ${c.sh}; }; then echo '  ok: ${name}'; else echo '  FAILED: ${name}'; [ "$first" -ne 0 ] || first=${i + 1}; fi`);
  });
  lines.push('exit "$first"');
  return lines.join('\n');
}
