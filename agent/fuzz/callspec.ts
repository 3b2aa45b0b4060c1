/**
 * A call written as text and read back: what the structure dump shows, and
 * the --call argument a minimised reproducer is replayed with, e.g.
 *   cmd=3,version=0x15,domain=5
 *   cmd=1,version=0x15,domain=0,max_vcpus=0      (createdomain: GOOD_CONFIG plus what differs)
 *   cmd=2,version=0x15,domain=7,bad_buffer
 */
import { CMD, commandName, errnoName, type CreateDomainFields, type DomctlCall } from './domctl.js';
import { GOOD_CONFIG } from './generator.js';

const CREATE_KEYS: ReadonlyArray<[keyof CreateDomainFields, string, boolean]> = [
  ['ssidref', 'ssidref', false],
  ['flags', 'flags', true],
  ['iommuOpts', 'iommu_opts', true],
  ['maxVcpus', 'max_vcpus', false],
  ['maxEvtchnPort', 'max_evtchn_port', false],
  ['maxGrantFrames', 'max_grant_frames', false],
  ['maxMaptrackFrames', 'max_maptrack_frames', false],
  ['grantOpts', 'grant_opts', true],
];

const hex = (n: number): string => `0x${(n >>> 0).toString(16)}`;

/** The structure as it is sent, one ".field = value" line each (the paper's dump). */
export function dumpCall(call: DomctlCall): string[] {
  const name = commandName(call.cmd >>> 0);
  const lines = [
    `    .cmd = ${call.cmd >>> 0}${name ? ` (${name})` : ''}`,
    `    .interface_version = ${hex(call.interfaceVersion)}`,
    `    .domain = ${call.domain}`,
  ];
  if (call.create) {
    for (const [k, label, asHex] of CREATE_KEYS) lines.push(`    .u.createdomain.${label} = ${asHex ? hex(call.create[k]) : call.create[k]}`);
  }
  if (call.badBuffer) lines.push('    (sent as a NULL pointer: the hypervisor cannot read it)');
  return lines;
}

export function formatErrno(e: number): string {
  return e === 0 ? '0' : `-${e}`;
}

export function formatErrnos(es: readonly number[]): string {
  return es.map(formatErrno).join(' or ');
}

export function describeErrno(e: number): string {
  const n = errnoName(e);
  return n ? `${formatErrno(e)} (${n})` : formatErrno(e);
}

export function callSpec(call: DomctlCall): string {
  const parts = [`cmd=${call.cmd >>> 0}`, `version=${hex(call.interfaceVersion)}`, `domain=${call.domain}`];
  if (call.create) {
    for (const [k, label, asHex] of CREATE_KEYS) {
      if (call.create[k] !== GOOD_CONFIG[k]) parts.push(`${label}=${asHex ? hex(call.create[k]) : call.create[k]}`);
    }
  }
  if (call.badBuffer) parts.push('bad_buffer');
  return parts.join(',');
}

export class CallSpecError extends Error {}

function parseNumber(text: string, what: string, spec: string): number {
  const n = /^0x[0-9a-f]+$/i.test(text) ? parseInt(text.slice(2), 16) : /^-?\d+$/.test(text) ? Number(text) : NaN;
  if (!Number.isSafeInteger(n)) throw new CallSpecError(`--call ${spec}: ${what}=${text} is not a number (decimal or 0x hex)`);
  return n;
}

export function parseCallSpec(spec: string): DomctlCall {
  const fields = new Map<string, string>();
  let badBuffer = false;
  for (const part of spec.split(',')) {
    if (part === 'bad_buffer') {
      badBuffer = true;
      continue;
    }
    const eq = part.indexOf('=');
    if (eq <= 0) throw new CallSpecError(`--call ${spec}: "${part}" is not key=value`);
    fields.set(part.slice(0, eq), part.slice(eq + 1));
  }
  const need = (k: string): number => {
    const v = fields.get(k);
    if (v === undefined) throw new CallSpecError(`--call ${spec}: ${k}= is missing (cmd, version and domain are required)`);
    fields.delete(k);
    return parseNumber(v, k, spec);
  };
  const cmd = need('cmd');
  const interfaceVersion = need('version');
  const domain = need('domain');
  if (cmd < 0 || cmd > 0xffffffff) throw new CallSpecError(`--call ${spec}: cmd=${cmd} is not a 32-bit number`);
  if (interfaceVersion < 0 || interfaceVersion > 0xffffffff) throw new CallSpecError(`--call ${spec}: version=${interfaceVersion} is not a 32-bit number`);
  if (domain < 0 || domain > 0xffff) throw new CallSpecError(`--call ${spec}: domain=${domain} is not a 16-bit domain id`);
  const call: DomctlCall = { cmd, interfaceVersion, domain, badBuffer };
  if (cmd === CMD.createdomain) {
    const create: CreateDomainFields = { ...GOOD_CONFIG };
    for (const [k, label] of CREATE_KEYS) {
      const v = fields.get(label);
      if (v === undefined) continue;
      create[k] = parseNumber(v, label, spec);
      fields.delete(label);
    }
    call.create = create;
  }
  const left = [...fields.keys()];
  if (left.length) throw new CallSpecError(`--call ${spec}: unknown field${left.length > 1 ? 's' : ''} ${left.join(', ')}`);
  return call;
}
