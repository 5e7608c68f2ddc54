/**
 * Numbers and plurals in messages go through lib/common/format.ts (formatNumber, plural, ordinal): the helpers
 * against hand-written expectations, and a guard that the command line's own sources build no count + plural
 * noun, ordinal or "N times" by hand (where "1 inputs", "2th" and "1 times" came from).
 */
import * as fs from 'node:fs';
import * as path from 'node:path';

import { expect } from 'chai';

import { formatNumber, ordinal, plural } from '../../lib/common/format';
import { PACKAGE_ROOT } from '../../lib/common/package-root';

function sources(dir: string): string[] {
  return fs.readdirSync(dir, { recursive: true, encoding: 'utf8' }).filter((f) => f.endsWith('.ts')).map((f) => path.join(dir, f));
}

describe('number and plural formatting', function () {
  it('formatNumber: integers as they are, others to 4 significant digits (3 decimals from 1 up), no float noise', function () {
    expect(formatNumber(1 / 75)).to.equal('0.01333');
    expect(formatNumber(0.1 + 0.2)).to.equal('0.3');
    expect(formatNumber(1.5)).to.equal('1.5');
    expect(formatNumber(12.34567)).to.equal('12.346');
    expect(formatNumber(2.0000001)).to.equal('2');
    expect(formatNumber(300)).to.equal('300');
    expect(formatNumber(-0.000123456)).to.equal('-0.0001235');
    expect(formatNumber(2.99825, 2)).to.equal('2.998');
    expect(formatNumber(Infinity)).to.equal('Infinity');
  });

  it('plural and ordinal', function () {
    expect([0, 1, 2].map((n) => plural(n, 'input'))).to.deep.equal(['0 inputs', '1 input', '2 inputs']);
    expect(plural(1, 'index', 'indices')).to.equal('1 index');
    expect(plural(3, 'index', 'indices')).to.equal('3 indices');
    expect([1, 2, 3, 4, 11, 12, 13, 21, 22, 23, 101, 102, 111, 112].map(ordinal)).to.deep.equal(
      ['1st', '2nd', '3rd', '4th', '11th', '12th', '13th', '21st', '22nd', '23rd', '101st', '102nd', '111th', '112th'],
    );
  });

  it('the CLI sources build no counted plural, ordinal or "N times" by hand', function () {
    const bad: string[] = [];
    for (const file of sources(path.join(PACKAGE_ROOT, 'bin'))) {
      fs.readFileSync(file, 'utf8').split('\n').forEach((line, i) => {
        const hit =
          /\$\{[^}]*(length|count|total|size|\bn[A-Z]\w*)\} [a-z]+s\b/.exec(line) ?? /\$\{[^}]+\}(th|st|nd|rd)\b/.exec(line) ?? /\$\{[^}]+\} times\b/.exec(line);
        if (hit) bad.push(`${path.relative(PACKAGE_ROOT, file)}:${i + 1}: ${hit[0]} (use plural / ordinal from lib/common/format.ts)`);
      });
    }
    expect(bad).to.deep.equal([]);
  });
});
