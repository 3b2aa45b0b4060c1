import { expect } from 'chai';

import { ScheduleError, startSchedule, validateSchedule, validateTimezone, type Scheduler } from '../agent/schedule.js';

const sleep = (ms: number): Promise<void> => new Promise((r) => setTimeout(r, ms));

describe('agent/schedule', function () {
  this.timeout(30_000);
  let scheduler: Scheduler | undefined;
  afterEach(() => {
    scheduler?.stop();
    scheduler = undefined;
  });

  describe('validateSchedule', () => {
    it('accepts 5- and 6-field expressions, names and nicknames', () => {
      for (const ok of ['0 2 * * *', '30 1 * * mon-fri', '*/5 * * * * *', '0 3 1,15 * *', '@daily']) {
        expect(validateSchedule(ok), ok).to.equal(undefined);
      }
    });

    it('says which field is wrong and what its range is', () => {
      expect(validateSchedule('0 25 * * *')).to.equal('the hour field "25" is not valid: hours are 0-23');
      expect(validateSchedule('61 2 * * *')).to.match(/minute field "61".*0-59/);
      expect(validateSchedule('0 2 * * 9')).to.match(/day-of-week field "9"/);
      expect(validateSchedule('0 2 * 13 *')).to.match(/month field "13".*JAN-DEC/);
    });

    it('explains a wrong number of fields, an empty schedule and a date that never comes', () => {
      expect(validateSchedule('0 2 * *')).to.match(/has 4 fields; a schedule has 5 .* or 6/);
      expect(validateSchedule('1 2 3 4 5 6 7')).to.match(/has 7 fields/);
      expect(validateSchedule('   ')).to.equal('the schedule is empty');
      expect(validateSchedule('0 2 31 2 *')).to.match(/never fire/);
    });

    it('validates time zones', () => {
      expect(validateTimezone('Europe/London')).to.equal(undefined);
      expect(validateTimezone('Mars/Olympus')).to.match(/not a time zone/);
    });

    it('startSchedule refuses a bad expression or time zone with a ScheduleError and a hint', () => {
      expect(() => startSchedule('0 25 * * *', async () => {}, { log: () => {} })).to.throw(ScheduleError, /hour field/);
      expect(() => startSchedule('0 2 * * *', async () => {}, { log: () => {}, timezone: 'Mars/Olympus' })).to.throw(ScheduleError);
    });
  });

  describe('nextRuns', () => {
    it('comes from node-cron and follows the time zone', () => {
      scheduler = startSchedule('0 2 * * *', async () => {}, { log: () => {}, timezone: 'Asia/Tokyo' });
      const runs = scheduler.nextRuns(3);
      expect(runs).to.have.length(3);
      for (const d of runs) expect(d.getUTCHours(), d.toISOString()).to.equal(17); // 02:00 in Tokyo (UTC+9)
      expect(runs[1]!.getTime() - runs[0]!.getTime()).to.equal(24 * 3600 * 1000);
      expect(runs[0]!.getTime()).to.be.greaterThan(Date.now());
      scheduler.stop();
      expect(scheduler.nextRuns(3)).to.deep.equal([]);
    });
  });

  describe('a real schedule of every second', () => {
    it('fires the night once a second', async () => {
      const lines: string[] = [];
      let nights = 0;
      scheduler = startSchedule('* * * * * *', async () => void nights++, { log: (l) => lines.push(l) });
      await sleep(3500);
      expect(nights).to.be.within(2, 4);
      expect(lines.filter((l) => l.includes('night starting'))).to.have.length(nights);
      expect(lines.filter((l) => l.includes('skipping'))).to.deep.equal([]);
    });

    it('skips ticks while a night runs, with a log line, and never overlaps or queues them', async () => {
      const lines: string[] = [];
      let active = 0;
      let maxActive = 0;
      let nights = 0;
      scheduler = startSchedule(
        '* * * * * *',
        async () => {
          nights++;
          active++;
          maxActive = Math.max(maxActive, active);
          await sleep(2300);
          active--;
        },
        { log: (l) => lines.push(l) },
      );
      await sleep(3400);
      scheduler.stop();
      await scheduler.whenIdle();
      expect(maxActive).to.equal(1);
      // A 2.3 s night started at second s covers ticks s+1 and s+2: two skipped
      // for the first night; a second night may have started after it.
      const skipped = lines.filter((l) => /skipping the night due at .*: the night started at .* is still running/.test(l));
      expect(skipped.length).to.be.at.least(2);
      expect(nights).to.be.within(1, 2);
      // Nothing was queued: once stopped and idle, no night starts late.
      const before = nights;
      await sleep(1200);
      expect(nights).to.equal(before);
    });

    it('keeps going after a night that fails, and logs the failure', async () => {
      const lines: string[] = [];
      let nights = 0;
      scheduler = startSchedule(
        '* * * * * *',
        async () => {
          nights++;
          throw new Error('the build broke');
        },
        { log: (l) => lines.push(l) },
      );
      await sleep(2500);
      expect(nights).to.be.at.least(2);
      expect(lines.some((l) => l.includes('night failed') && l.includes('the build broke'))).to.equal(true);
    });

    it('stop() stops it', async () => {
      let nights = 0;
      scheduler = startSchedule('* * * * * *', async () => void nights++, { log: () => {} });
      await sleep(1500);
      expect(nights).to.be.at.least(1);
      scheduler.stop();
      const atStop = nights;
      await sleep(2200);
      expect(nights).to.equal(atStop);
    });
  });
});
