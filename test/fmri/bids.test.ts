/**
 * BIDS inputs (lib/fmri/bids.ts, lib/fmri/nifti.ts): NIfTI-1 .nii.gz and NIfTI-2 .nii headers written by nibabel,
 * the _bold.json sidecar, and _events.tsv files.
 */
import * as fs from 'node:fs';
import * as path from 'node:path';

import { expect } from 'chai';

import { featuresNameForEvents, readBoldTiming, readEvents } from '../../lib/fmri/bids';
import { readNiftiTiming } from '../../lib/fmri/nifti';
import { rejects } from '../helpers/assert';
import { pythonJson } from '../helpers/python';
import { tempDir } from '../helpers/temp-dir';

/** Writes a BOLD image with nibabel: `volumes` volumes of 4x4x3 voxels, TR `zooms` in `unit`. */
function nibabelBold(file: string, version: 1 | 2, volumes: number, tr: number, unit: 'sec' | 'msec'): void {
  pythonJson(
    `import nibabel as nib
img_class = nib.Nifti1Image if ${version} == 1 else nib.Nifti2Image
img = img_class(np.zeros((4, 4, 3, ${volumes}), dtype=np.int16), np.eye(4))
img.header.set_zooms((3.0, 3.0, 3.0, ${tr}))
img.header.set_xyzt_units('mm', '${unit}')
nib.save(img, data)
print(json.dumps(True))`,
    file,
  );
}

describe('BIDS inputs', function () {
  const dir = tempDir('bids');

  it('reads volumes and TR from a NIfTI-1 .nii.gz and a NIfTI-2 .nii made by nibabel', async function () {
    const one = path.join(dir, 'sub-01_task-movie_run-1_bold.nii.gz');
    nibabelBold(one, 1, 37, 1.5, 'sec');
    expect(await readNiftiTiming(one)).to.deep.equal({ version: 1, volumes: 37, tr: 1.5, timeUnit: 's' });
    const two = path.join(dir, 'sub-01_task-movie_run-2_bold.nii');
    nibabelBold(two, 2, 250, 720, 'msec');
    expect(await readNiftiTiming(two)).to.deep.equal({ version: 2, volumes: 250, tr: 0.72, timeUnit: 'ms' });
    expect(await readBoldTiming(one)).to.deep.include({ runTrs: 37, tr: 1.5, sliceTimeRef: undefined });
  });

  it('takes RepetitionTime and StartTime (else the median SliceTiming) from the _bold.json sidecar', async function () {
    const bold = path.join(dir, 'sub-02_task-movie_run-1_bold.nii.gz');
    nibabelBold(bold, 1, 20, 2.5, 'sec');
    const sidecar = path.join(dir, 'sub-02_task-movie_run-1_bold.json');
    fs.writeFileSync(sidecar, JSON.stringify({ RepetitionTime: 2, SliceTiming: [0, 1, 0.5, 1.5, 0.25] }));
    let t = await readBoldTiming(bold);
    expect(t.tr).to.equal(2); // the sidecar wins over pixdim[4]
    expect(t.sliceTimeRef).to.equal(0.25); // median 0.5 s of a 2 s TR
    expect(t.sources.sliceTimeRef).to.match(/median of .*SliceTiming/);
    fs.writeFileSync(sidecar, JSON.stringify({ RepetitionTime: 2, StartTime: 1, SliceTiming: [0, 1] }));
    t = await readBoldTiming(bold);
    expect(t.sliceTimeRef).to.equal(0.5); // fMRIPrep's StartTime wins over SliceTiming
  });

  it('rejects files that are not NIfTI, naming the file', async function () {
    const junk = path.join(dir, 'junk_bold.nii');
    fs.writeFileSync(junk, Buffer.alloc(600, 7));
    await rejects(readNiftiTiming(junk), RangeError, /junk_bold\.nii' is not a NIfTI-1\/2 image/);
    await rejects(readNiftiTiming(path.join(dir, 'missing_bold.nii.gz')), RangeError, /ENOENT/);
  });

  it('places every events row with a stim_file, resolving paths against --stimuli or the events directory', function () {
    const events = path.join(dir, 'sub-01_task-movie_run-1_events.tsv');
    fs.writeFileSync(
      events,
      'onset\tduration\ttrial_type\tstim_file\n' +
        '0.0\t1.5\tfixation\tn/a\n' +
        '4.5\tn/a\tmovie\tmovie/part1.wav\n' +
        '300\t120.25\tmovie\tpart2.mp4\n',
    );
    fs.mkdirSync(path.join(dir, 'movie'), { recursive: true });
    fs.writeFileSync(path.join(dir, 'movie', 'part1.wav'), '');
    fs.writeFileSync(path.join(dir, 'part2.mp4'), '');
    const stimuliDir = path.join(dir, 'stimuli');
    fs.mkdirSync(path.join(stimuliDir, 'movie'), { recursive: true });
    fs.writeFileSync(path.join(stimuliDir, 'movie', 'part1.wav'), '');
    fs.writeFileSync(path.join(stimuliDir, 'part2.mp4'), '');
    const placed = readEvents(events);
    expect(placed.map((p) => [p.file, p.onset, p.duration])).to.deep.equal([
      [path.join(dir, 'movie/part1.wav'), 4.5, undefined],
      [path.join(dir, 'part2.mp4'), 300, 120.25],
    ]);
    expect(placed[0].label).to.match(/row 2 \(movie\/part1\.wav\)/);
    expect(readEvents(events, stimuliDir)[1].file).to.equal(path.join(stimuliDir, 'part2.mp4'));
    // a stim_file that is not there: the error names it and, without a stimuli folder, suggests one
    fs.rmSync(path.join(dir, 'part2.mp4'));
    expect(() => readEvents(events)).to.throw(/row 3 \(part2\.mp4\): '.*part2\.mp4' does not exist beside the events file; .*pass it with --stimuli DIR/);
    fs.rmSync(path.join(stimuliDir, 'part2.mp4'));
    expect(() => readEvents(events, stimuliDir)).to.throw(/does not exist in the stimuli folder/);
    expect(featuresNameForEvents(events)).to.equal('sub-01_task-movie_run-1_desc-encodec_features');
  });

  it('rejects events files without the columns or rows it needs', function () {
    const bad = path.join(dir, 'bad_events.tsv');
    fs.writeFileSync(bad, 'onset\tduration\n1\t2\n');
    expect(() => readEvents(bad)).to.throw(RangeError, /no 'stim_file' column/);
    fs.writeFileSync(bad, 'onset\tduration\tstim_file\n1\t2\tn/a\n');
    expect(() => readEvents(bad)).to.throw(RangeError, /no row with a stim_file/);
    fs.writeFileSync(path.join(dir, 'a.wav'), '');
    fs.writeFileSync(bad, 'onset\tduration\tstim_file\nsoon\t2\ta.wav\n');
    expect(() => readEvents(bad)).to.throw(RangeError, /row 1 \(a\.wav\): onset 'soon'/);
  });
});
