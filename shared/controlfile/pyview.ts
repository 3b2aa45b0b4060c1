/**
 * What Python prints for
 *   {"defaults": dict(cp.defaults()),
 *    "sections": {s: dict(cp.items(s)) for s in cp.sections()}}
 * rendered as JSON with Python's key order (JS objects would reorder keys
 * that look like integers, so the JSON is assembled from ordered entries).
 */
import type { ConfigDocument } from './document.js';
import type { ConfigError } from './errors.js';

export type Entries = ReadonlyArray<readonly [string, string]>;

export interface PythonView {
  /** Raw [DEFAULT] values: `cp.defaults()` does not interpolate. */
  readonly defaults: Entries;
  readonly sections: ReadonlyArray<readonly [string, Entries]>;
}

/** Build Python's view; throws the first interpolation error Python would raise. */
export function pythonView(doc: ConfigDocument): PythonView {
  const defaults: Array<[string, string]> = [];
  for (const o of doc.defaults.options.values()) defaults.push([o.name, o.value]);
  const sections: Array<[string, Entries]> = [];
  for (const name of doc.sectionNames()) {
    sections.push([name, doc.items(name).map((v) => [v.option, v.value] as const)]);
  }
  return { defaults, sections };
}

function jsonEntries(entries: Entries): string {
  let out = '{';
  for (let i = 0; i < entries.length; i++) {
    const [k, v] = entries[i] as readonly [string, string];
    if (i > 0) out += ',';
    out += JSON.stringify(k) + ':' + JSON.stringify(v);
  }
  return out + '}';
}

/** Compact JSON, byte-identical to Python's json.dumps(..., ensure_ascii=False, separators=(',', ':')). */
export function pythonViewJson(view: PythonView): string {
  let sections = '{';
  view.sections.forEach(([name, entries], i) => {
    if (i > 0) sections += ',';
    sections += JSON.stringify(name) + ':' + jsonEntries(entries);
  });
  sections += '}';
  return `{"defaults":${jsonEntries(view.defaults)},"sections":${sections}}`;
}

export function errorJson(e: ConfigError): string {
  return JSON.stringify({ error: e.toJSON() });
}

/** The same view for a person: INI-like, values as Python returns them. */
export function pythonViewText(view: PythonView): string {
  const lines: string[] = [];
  const block = (title: string, entries: Entries): void => {
    lines.push(`[${title}]`);
    for (const [k, v] of entries) {
      const [first, ...rest] = v.split('\n');
      lines.push(`${k} = ${first ?? ''}`);
      for (const r of rest) lines.push(`\t${r}`);
    }
    lines.push('');
  };
  if (view.defaults.length > 0) block('DEFAULT', view.defaults);
  for (const [name, entries] of view.sections) block(name, entries);
  return lines.join('\n');
}
