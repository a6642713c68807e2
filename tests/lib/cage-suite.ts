// A mocha suite's cage lab in one line (cageSuite()), for the suites that need
// no more than a lab, its first server and one client of it. Apart from
// cage.ts, which the benchmarks import without mocha.
import { cageClient, cageLab, type CageClient, type CageLab, type CageServer } from './cage.js';
import { Lab } from './netns.js';

/** A cage lab and a client of its first server (cageClient); see cageSuite(). */
export interface CageSuite extends CageClient {
  c: CageLab;
  srv: CageServer;
}

/**
 * Registers in the calling describe() a cage lab whose first server knows the client `name`, built
 * before the suite's tests and removed after them; the fields are set from before() on.
 */
export function cageSuite(name: string): CageSuite {
  const lab = new Lab();
  const suite = {} as CageSuite;
  before(async () => {
    const c = await cageLab(lab);
    const srv = c.servers[0]!;
    Object.assign(suite, { c, srv, ...(await cageClient(srv, c.dir, name)) });
  });
  after(() => lab.teardown());
  return suite;
}
