/**
 * What the fuzzer will not send on a machine that is running tonight's
 * tests: anything that would pause, unpause or destroy a domain it did not
 * create (dom0 and itself included), even a call Xen should refuse, since a
 * hypervisor bug there takes the night down with it; and more live domains
 * of its own than --max-domains. --unsafe lifts both.
 */
import { CMD, DOMID, type DomctlCall } from './domctl.js';
import type { DomctlModel, Expectation } from './model.js';

export interface SafetyRules {
  unsafe: boolean;
  maxDomains: number;
}

/** Why this call is withheld; null to send it. */
export function withholdReason(call: DomctlCall, expected: Expectation, model: DomctlModel, rules: SafetyRules): string | null {
  if (rules.unsafe) return null;
  const cmd = call.cmd >>> 0;
  if (cmd === CMD.destroydomain || cmd === CMD.pausedomain || cmd === CMD.unpausedomain) {
    const dom = call.domain;
    if (dom === DOMID.self) return 'it names DOMID_SELF';
    if (dom === model.caller.domid) return `domain ${dom} is the caller itself`;
    const d = model.domain(dom);
    if (d && !d.ours) return `domain ${dom} was not created by this run`;
    if (!d && model.exists(dom) === null) return `domain ${dom} may exist and was not created by this run`;
    return null;
  }
  if (cmd === CMD.createdomain && expected.errnos.includes(0) && model.oursIds().length >= rules.maxDomains) {
    return `this run has ${model.oursIds().length} domains already (--max-domains ${rules.maxDomains})`;
  }
  return null;
}
