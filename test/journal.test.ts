/** The night's journal: steps added by a newer xentest join a night begun by an older one. */
import { expect } from 'chai';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Journal, type NightData } from '../agent/pipeline/journal.js';
import { nightStepNames } from '../agent/pipeline/night.js';

describe('agent/pipeline/journal', () => {
  let dir: string;
  beforeEach(() => (dir = mkdtempSync(join(tmpdir(), 'xentest-journal-'))));
  afterEach(() => rmSync(dir, { recursive: true, force: true }));

  it('puts steps a night lacks where they belong, not yet run, and keeps what the others did', () => {
    const file = join(dir, 'journal.json');
    const current = nightStepNames(false);
    const older = current.filter((n) => !n.startsWith('profilers.'));
    expect(older.length).to.be.lessThan(current.length);
    const j = Journal.create(file, { night: 'n1', controlFile: 'c', sourceControlFile: 'c', createdAt: 'now' }, older);
    j.step('domains.dispatch').state = 'done';
    j.step('domains.dispatch').status = 'GOOD';
    j.save();

    const again = Journal.load(file);
    again.ensureSteps(current);
    const saved = JSON.parse(readFileSync(file, 'utf8')) as NightData;
    expect(saved.steps.map((s) => s.name)).to.deep.equal([...current]);
    expect(saved.steps.find((s) => s.name === 'profilers.start')).to.include({ state: 'pending', attempts: 0 });
    expect(saved.steps.find((s) => s.name === 'domains.dispatch')).to.include({ state: 'done', status: 'GOOD' });
  });
});
