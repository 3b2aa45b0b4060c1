/**
 * A control file as configparser holds it after reading: raw values with the
 * place each was written, and Python's view of them (`defaults()`,
 * `sections()`, `items(section)` with interpolation).
 */
import type { ConfigError, Location } from './errors.js';
import { interpolate } from './interpolation.js';

export const DEFAULT_SECTION = 'DEFAULT';

export interface RawOption {
  /** The option name as Python stores it (lower-cased). */
  readonly name: string;
  /** The raw value, continuation lines joined with newlines, before interpolation. */
  value: string;
  readonly file: string;
  /** The line of `name = value`; continuation lines follow it. */
  readonly line: number;
}

export interface RawSection {
  /** Case-sensitive, exactly as written between the brackets. */
  readonly name: string;
  readonly file: string;
  /** The line of the first header for this section (0 for an absent [DEFAULT]). */
  line: number;
  readonly options: Map<string, RawOption>;
}

/** A value after interpolation, with the place its option was written. */
export interface Value extends Location {
  readonly value: string;
  readonly option: string;
  readonly section: string;
}

export class ConfigDocument {
  constructor(
    readonly file: string,
    readonly defaults: RawSection,
    /** In the order Python's `sections()` lists them (first appearance). */
    readonly sections: Map<string, RawSection>,
  ) {}

  sectionNames(): string[] {
    return [...this.sections.keys()];
  }

  /** The raw option a section sees: its own, or the one from [DEFAULT]. */
  rawOption(section: string, option: string): RawOption | undefined {
    const own = section === DEFAULT_SECTION ? undefined : this.sections.get(section)?.options.get(option);
    return own ?? this.defaults.options.get(option);
  }

  /**
   * Python's `items(section)`: defaults first, then the section's own new
   * options, each interpolated. Throws the first ConfigError Python would.
   */
  items(section: string): Value[] {
    return this.itemsCollecting(section, (e) => {
      throw e;
    });
  }

  /** Like items(), but reports every interpolation error and leaves those options out. */
  itemsCollecting(section: string, onError: (e: ConfigError) => void): Value[] {
    const merged = this.mergedOptions(section);
    const lookup = (name: string): string | undefined => merged.get(name)?.value;
    const out: Value[] = [];
    for (const raw of merged.values()) {
      try {
        const value = interpolate(section, raw.name, raw.value, lookup, raw);
        out.push({ value, option: raw.name, section, file: raw.file, line: raw.line });
      } catch (e) {
        if (!isConfigError(e)) throw e;
        onError(e);
      }
    }
    return out;
  }

  private mergedOptions(section: string): Map<string, RawOption> {
    const merged = new Map(this.defaults.options);
    const own = this.sections.get(section);
    if (own && section !== DEFAULT_SECTION) for (const [k, v] of own.options) merged.set(k, v);
    return merged;
  }
}

function isConfigError(e: unknown): e is ConfigError {
  return e instanceof Error && e.name === 'ConfigError';
}
