// A mocha suite's server lab (srvLab) in one line: built before the suite's
// tests, removed after them, whatever they started in it.
import { Lab } from './netns.js';
import { srvLab, type SrvLab } from './srv-lab.js';

export interface SrvSuite {
  readonly lab: Lab;
  /** The server lab, from before() on. */
  readonly l: SrvLab;
}

/** Registers the suite's server lab in the calling describe(); `built` as srvLab takes it. */
export function srvSuite(opts: { built?: string[] } = {}): SrvSuite {
  const lab = new Lab();
  let l: SrvLab | undefined;
  before(async () => {
    l = await srvLab(lab, opts);
  });
  after(() => lab.teardown());
  return {
    lab,
    get l(): SrvLab {
      if (l === undefined) throw new Error(`lab ${lab.id}: the server lab is built in before(), not yet`);
      return l;
    },
  };
}
