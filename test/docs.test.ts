import { expect } from 'chai';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { readControlFile } from '../shared/controlfile/reader.js';
import { DOMAIN_KEYS, PREFERENCE_KEYS, PROFILERS, TEST_KEYS, type KeySpec } from '../shared/controlfile/schema.js';
import { REPO_ROOT } from './support/cli.js';

/** The keys xentest knows, the README's reference and conf/example.cfg must say the same. */
describe('the control-file reference', () => {
  const readme = readFileSync(join(REPO_ROOT, 'README.md'), 'utf8');
  const example = readControlFile(join(REPO_ROOT, 'conf/example.cfg'));
  const exampleKeys = (section: (name: string) => boolean): Set<string> => {
    const keys = new Set<string>();
    for (const [name, s] of example.sections) if (section(name)) for (const k of s.options.keys()) keys.add(k);
    return keys;
  };
  const groups: Array<[string, readonly KeySpec[], Set<string>]> = [
    ['[Preferences]', PREFERENCE_KEYS, exampleKeys((n) => n === 'Preferences')],
    ['test sections', TEST_KEYS, exampleKeys((n) => n === 'LTP' || n === 'settime')],
    ['domain sections', DOMAIN_KEYS, exampleKeys((n) => n.startsWith('XENVM'))],
  ];
  for (const [what, specs, inExample] of groups) {
    for (const spec of specs) {
      const key = spec.key === 'test<N>' ? 'test1' : spec.key;
      it(`documents ${what} key ${key} in the README and shows it in conf/example.cfg`, () => {
        expect(readme).to.include('| `' + key + '`');
        expect([...inExample]).to.include(key);
      });
    }
  }
  it(`documents [${PROFILERS}] in the README and shows it in conf/example.cfg`, () => {
    expect(readme).to.include('### `[' + PROFILERS + ']`');
    expect(example.sections.get(PROFILERS)?.options.size ?? 0).to.be.greaterThan(0);
  });
});
