/** Atomic file output (lib/common/atomic.ts): single files and sets of files written together. */
import * as fs from 'node:fs';
import * as path from 'node:path';

import { expect } from 'chai';

import { writeFileAtomic, writeFilesAtomic } from '../../lib/common/atomic';
import { rejects } from '../helpers/assert';
import { tempDir } from '../helpers/temp-dir';

const bytes = (text: string): Uint8Array => Buffer.from(text, 'utf8');

describe('atomic file output', function () {
  const root = tempDir('atomic');
  let dir: string;
  let n = 0;

  beforeEach(function () {
    dir = path.join(root, String(n++));
    fs.mkdirSync(dir);
  });

  it('writeFilesAtomic writes every part, in pieces or whole, and leaves no temporary file', async function () {
    const a = path.join(dir, 'a.npy');
    const b = path.join(dir, 'a.csv');
    fs.writeFileSync(b, 'old');
    await writeFilesAtomic([
      [a, [bytes('he'), bytes('llo')]],
      [b, bytes('new')],
    ]);
    expect(fs.readFileSync(a, 'utf8')).to.equal('hello');
    expect(fs.readFileSync(b, 'utf8')).to.equal('new');
    expect(fs.readdirSync(dir).sort()).to.deep.equal(['a.csv', 'a.npy']);
  });

  it('a failure while writing the second part leaves neither target changed nor a temporary file', async function () {
    const a = path.join(dir, 'a.npy');
    const b = path.join(dir, 'a.csv');
    // fails after the second part's temporary file is open and partly written
    const notBytes = { byteLength: 4 } as unknown as Uint8Array;
    await rejects(writeFilesAtomic([[a, bytes('first')], [b, [bytes('sec'), notBytes]]]), TypeError, /argument/);
    expect(fs.readdirSync(dir)).to.deep.equal([]);

    // the same with older versions in place: both kept
    fs.writeFileSync(a, 'old a');
    fs.writeFileSync(b, 'old b');
    await rejects(writeFilesAtomic([[a, bytes('first')], [b, [bytes('sec'), notBytes]]]), TypeError, /argument/);
    expect(fs.readdirSync(dir).sort()).to.deep.equal(['a.csv', 'a.npy']);
    expect(fs.readFileSync(a, 'utf8')).to.equal('old a');
    expect(fs.readFileSync(b, 'utf8')).to.equal('old b');
  });

  it('a second part that cannot be created (no such directory) removes the first part\'s temporary file', async function () {
    const a = path.join(dir, 'a.npy');
    const err = await rejects(writeFilesAtomic([[a, bytes('first')], [path.join(dir, 'missing', 'a.csv'), bytes('x')]]), Error, /ENOENT/);
    expect((err as NodeJS.ErrnoException).code).to.equal('ENOENT');
    expect(fs.readdirSync(dir)).to.deep.equal([]);
  });

  it('a failed rename leaves the parts renamed before it, and no temporary file', async function () {
    const a = path.join(dir, 'a.npy');
    const b = path.join(dir, 'a.csv');
    fs.mkdirSync(b); // a directory where the second file goes: its rename fails
    await rejects(writeFilesAtomic([[a, bytes('first')], [b, bytes('second')]]), Error, /EISDIR|EPERM|ENOTEMPTY/);
    expect(fs.readFileSync(a, 'utf8')).to.equal('first');
    expect(fs.readdirSync(dir).sort()).to.deep.equal(['a.csv', 'a.npy']);
    expect(fs.readdirSync(b)).to.deep.equal([]);
  });

  it('writeFileAtomic replaces a file whole, and a failed write leaves it as it was', async function () {
    const file = path.join(dir, 'f.bin');
    await writeFileAtomic(file, bytes('one'));
    await writeFileAtomic(file, [bytes('t'), bytes('wo')]);
    expect(fs.readFileSync(file, 'utf8')).to.equal('two');
    await rejects(writeFileAtomic(file, [bytes('three'), { byteLength: 1 } as unknown as Uint8Array]), TypeError, /argument/);
    expect(fs.readFileSync(file, 'utf8')).to.equal('two');
    expect(fs.readdirSync(dir)).to.deep.equal(['f.bin']);
  });
});
