/**
 * BIDS derivative outputs: names, dataset_description.json (read back with Python's json), sidecars, and a small
 * derivative dataset checked by the BIDS validator (the schema-based one, run offline: test/helpers/bids-validator.ts).
 */
import * as fs from 'node:fs';
import * as path from 'node:path';

import { expect } from 'chai';

import {
  BIDS_VERSION,
  bidsEntities,
  derivativeBase,
  derivativeConcatBase,
  derivativeFramesBase,
  findBidsRoot,
  sidecarPathFor,
  writeBidsIgnore,
  writeDatasetDescription,
  writeSidecar,
} from '../../lib/fmri/bids-derivative';
import { FrameSeries, writeFramesFile } from '../../lib/io/frames-file';
import { writeNpy } from '../../lib/io/npy';
import { BidsIssue, validateBids } from '../helpers/bids-validator';
import { pythonJson } from '../helpers/python';
import { tempDir } from '../helpers/temp-dir';

describe('BIDS derivative outputs', function () {
  this.timeout(120000);
  const dir = tempDir('bids-deriv');

  describe('bidsEntities', function () {
    it('parses sub, ses, task, acq, run, suffix and extension', function () {
      expect(bidsEntities('/data/ds/sub-01/ses-02/func/sub-01_ses-02_task-movie_acq-mb4_run-1_events.tsv')).to.deep.equal({
        sub: '01',
        ses: '02',
        task: 'movie',
        acq: 'mb4',
        run: '1',
        entities: { sub: '01', ses: '02', task: 'movie', acq: 'mb4', run: '1' },
        suffix: 'events',
        extension: '.tsv',
      });
    });

    it('parses a name without session, run or extension', function () {
      expect(bidsEntities('sub-ctrl07_task-listening_bold.nii.gz')).to.deep.equal({
        sub: 'ctrl07',
        task: 'listening',
        entities: { sub: 'ctrl07', task: 'listening' },
        suffix: 'bold',
        extension: '.nii.gz',
      });
      expect(bidsEntities('sub-01_task-a_echo-2_physio')).to.deep.include({ suffix: 'physio', extension: '', entities: { sub: '01', task: 'a', echo: '2' } });
    });

    it('returns null for names that are not BIDS-shaped', function () {
      for (const name of [
        'movie_events.tsv', // no sub
        'task-movie_sub-01_events.tsv', // sub not first
        'sub-01.tsv', // no suffix
        'sub-01_task-mo_vie_events.tsv', // an entity without a label
        'sub-01_task-mo-vie_events.tsv', // a dash in a label
        'sub-01_task-movie_task-b_events.tsv', // a repeated entity
        'sub-01_task-mov!e_events.tsv', // a label that is not alphanumeric
        'sub-01_task-movie_ev-ents.tsv', // suffix with a dash
        'sub-01_task-movie_events.tsv~', // odd extension
      ]) {
        expect(bidsEntities(name), name).to.equal(null);
      }
    });
  });

  describe('derivative names', function () {
    it('mirrors sub/[ses]/func and puts entities in the order of the specification', function () {
      expect(derivativeBase('/out', '/ds/sub-01/ses-02/func/sub-01_ses-02_task-movie_run-1_events.tsv')).to.equal(
        '/out/sub-01/ses-02/func/sub-01_ses-02_task-movie_run-1_desc-encodec_features',
      );
      expect(derivativeBase('/out', 'sub-01_task-movie_events.tsv')).to.equal('/out/sub-01/func/sub-01_task-movie_desc-encodec_features');
      // out of order in the source (run before task, acq last): sorted
      expect(derivativeBase('/out', 'sub-01_run-2_task-movie_acq-mb4_events.tsv', 'latents', 'timeseries')).to.equal(
        '/out/sub-01/func/sub-01_task-movie_acq-mb4_run-2_desc-latents_timeseries',
      );
      // a desc of the source is replaced
      expect(derivativeBase('/out', 'sub-01_task-movie_desc-preproc_bold.nii.gz')).to.equal('/out/sub-01/func/sub-01_task-movie_desc-encodec_features');
      expect(derivativeBase('/out', 'movie_events.tsv')).to.equal(undefined);
      expect(() => derivativeBase('/out', 'sub-01_task-movie_events.tsv', 'en-codec')).to.throw(/entity desc-en-codec/);
    });

    it('names a concatenation of runs by what they share, without run', function () {
      const runs = ['sub-01_ses-2_task-movie_acq-mb4_run-1_events.tsv', 'sub-01_ses-2_task-movie_acq-mb4_run-2_events.tsv'];
      expect(derivativeConcatBase('/out', runs)).to.equal('/out/sub-01/ses-2/func/sub-01_ses-2_task-movie_acq-mb4_desc-encodec_features');
      expect(derivativeConcatBase('/out', [runs[0], 'sub-01_ses-2_task-movie_acq-mb2_run-2_events.tsv'])).to.equal(
        '/out/sub-01/ses-2/func/sub-01_ses-2_task-movie_desc-encodec_features',
      );
      expect(derivativeConcatBase('/out', [runs[0], 'sub-01_ses-2_task-rest_run-2_events.tsv'])).to.equal(undefined);
      expect(derivativeConcatBase('/out', [runs[0], 'sub-02_ses-2_task-movie_run-2_events.tsv'])).to.equal(undefined);
      expect(derivativeConcatBase('/out', [runs[0], 'sub-01_task-movie_acq-mb4_run-2_events.tsv'])).to.equal(undefined); // ses missing in one
      expect(derivativeConcatBase('/out', [runs[0], 'notes.tsv'])).to.equal(undefined);
      expect(derivativeConcatBase('/out', [])).to.equal(undefined);
    });

    it('names frames as a continuous recording with recording-<label>', function () {
      expect(derivativeFramesBase('/out', 'sub-01_ses-02_task-movie_run-1_events.tsv')).to.equal(
        '/out/sub-01/ses-02/func/sub-01_ses-02_task-movie_run-1_recording-encodec',
      );
    });

    it('puts a sidecar beside its output', function () {
      expect(sidecarPathFor('/o/x_features.npy')).to.equal('/o/x_features.json');
      expect(sidecarPathFor('/o/x_recording-a_stim.tsv.gz')).to.equal('/o/x_recording-a_stim.json');
      expect(sidecarPathFor('/o/x_features.json')).to.equal('/o/x_features.json');
    });
  });

  describe('findBidsRoot', function () {
    it('walks up to the directory with dataset_description.json', function () {
      const root = path.join(dir, 'find', 'ds');
      fs.mkdirSync(path.join(root, 'sub-01', 'func'), { recursive: true });
      fs.writeFileSync(path.join(root, 'dataset_description.json'), '{"Name": "x", "BIDSVersion": "1.9.0"}');
      expect(findBidsRoot(path.join(root, 'sub-01', 'func', 'sub-01_task-a_events.tsv'))).to.equal(root);
      expect(findBidsRoot(path.join(dir, 'find', 'elsewhere.tsv'))).to.equal(undefined);
    });
  });

  describe('dataset_description.json', function () {
    it('states the derivative, its generator with the command line, and the source dataset', async function () {
      const out = path.join(dir, 'desc', 'out');
      const source = path.join(dir, 'desc', 'raw');
      fs.mkdirSync(source, { recursive: true });
      fs.writeFileSync(path.join(source, 'dataset_description.json'), JSON.stringify({ Name: 'raw', BIDSVersion: '1.9.0', DatasetDOI: 'doi:10.18112/openneuro.ds000113.v1.3.0' }));
      const commandLine = "encodec-native extract 'movie part 1.mkv' --events sub-01_task-movie_run-1_events.tsv --out out";
      expect(await writeDatasetDescription(out, { name: 'EnCodec features', version: '0.1.0', commandLine, sourceRoot: source, codeUrl: 'https://example.org/encodec-native' })).to.equal('written');
      const py = pythonJson<Record<string, unknown>>(`print(json.dumps(json.load(open(data))))`, path.join(out, 'dataset_description.json'));
      expect(py).to.deep.equal({
        Name: 'EnCodec features',
        BIDSVersion: BIDS_VERSION,
        DatasetType: 'derivative',
        GeneratedBy: [{ Name: 'encodec-native', Version: '0.1.0', Description: `Command line: ${commandLine}`, CodeURL: 'https://example.org/encodec-native' }],
        SourceDatasets: [{ URL: 'bids:raw:', DOI: 'doi:10.18112/openneuro.ds000113.v1.3.0' }],
        DatasetLinks: { raw: '../raw' },
      });
      expect(fs.readdirSync(out)).to.deep.equal(['dataset_description.json']);
    });

    it('keeps an existing description of encodec-native (a user-edited Name survives)', async function () {
      const out = path.join(dir, 'keep');
      fs.mkdirSync(out);
      const edited = { Name: 'My movie features', BIDSVersion: '1.9.0', DatasetType: 'derivative', GeneratedBy: [{ Name: 'encodec-native', Version: '0.0.9' }] };
      fs.writeFileSync(path.join(out, 'dataset_description.json'), JSON.stringify(edited));
      expect(await writeDatasetDescription(out, { name: 'EnCodec features', version: '0.1.0', commandLine: 'x' })).to.equal('kept');
      expect(JSON.parse(fs.readFileSync(path.join(out, 'dataset_description.json'), 'utf8'))).to.deep.equal(edited);
    });

    it("refuses to take over another pipeline's dataset, or a file that is not JSON", async function () {
      const out = path.join(dir, 'other');
      fs.mkdirSync(out);
      const file = path.join(out, 'dataset_description.json');
      const theirs = JSON.stringify({ Name: 'fMRIPrep', BIDSVersion: '1.9.0', DatasetType: 'derivative', GeneratedBy: [{ Name: 'fMRIPrep' }] });
      fs.writeFileSync(file, theirs);
      const err = await writeDatasetDescription(out, { name: 'x', version: '0.1.0', commandLine: 'x' }).catch((e: unknown) => e as Error);
      expect((err as { code?: string }).code).to.equal('ENCODEC_BAD_INPUT');
      expect((err as Error).message).to.match(/was not made by encodec-native; write the features to another --out directory/);
      expect(fs.readFileSync(file, 'utf8')).to.equal(theirs);
      fs.writeFileSync(file, '{"Name": ');
      const bad = await writeDatasetDescription(out, { name: 'x', version: '0.1.0', commandLine: 'x' }).catch((e: unknown) => e as Error);
      expect((bad as Error).message).to.match(/not a JSON object/);
      expect(fs.readFileSync(file, 'utf8')).to.equal('{"Name": ');
    });

    it('ends with one whole description when many writers race (the first one stays, no temporary files)', async function () {
      const out = path.join(dir, 'race');
      const outcomes = await Promise.all(
        Array.from({ length: 12 }, (_, i) => writeDatasetDescription(out, { name: 'EnCodec features', version: '0.1.0', commandLine: `task ${i}` })),
      );
      expect(outcomes.filter((o) => o === 'written')).to.have.length.of.at.least(1);
      expect(fs.readdirSync(out)).to.deep.equal(['dataset_description.json']);
      const text = fs.readFileSync(path.join(out, 'dataset_description.json'), 'utf8');
      const description = JSON.parse(text) as { GeneratedBy: { Description: string }[] };
      expect(description.GeneratedBy[0].Description).to.match(/^Command line: task \d+$/);
    });
  });

  describe('sidecars and .bidsignore', function () {
    it('writes a sidecar beside an output, read back by Python', async function () {
      const output = path.join(dir, 'side', 'sub-01', 'func', 'sub-01_task-movie_run-1_desc-encodec_features.npy');
      const fields = { RepetitionTime: 2, SliceTimingReference: 0.5, Onsets: [0, 1.5], Delays: [1, 2, 3, 4], ZScore: 'run', Resampling: 'lanczos', FeatureKind: 'codes', Bandwidth: 6, Model: 'encodec_24khz', ModelSHA256: 'ab'.repeat(32), Note: undefined };
      const written = await writeSidecar(output, fields);
      expect(written).to.equal(output.replace(/\.npy$/, '.json'));
      const { Note: _note, ...expected } = fields;
      expect(pythonJson(`print(json.dumps(json.load(open(data))))`, written)).to.deep.equal(expected);
      const err = await writeSidecar(output, { RepetitionTime: NaN }).catch((e: unknown) => e as Error);
      expect((err as { code?: string }).code).to.equal('ENCODEC_BAD_INPUT');
      expect((err as Error).message).to.match(/RepetitionTime is NaN/);
      expect(pythonJson(`print(json.dumps(json.load(open(data))))`, written)).to.deep.equal(expected); // unchanged
    });

    it('adds its patterns to a .bidsignore once, after the lines a user wrote', async function () {
      const out = path.join(dir, 'ignore');
      await writeBidsIgnore(out);
      await writeBidsIgnore(out);
      const first = fs.readFileSync(path.join(out, '.bidsignore'), 'utf8');
      expect(first.split('\n').filter((l) => l === '*_features.*')).to.have.length(1);
      fs.writeFileSync(path.join(out, '.bidsignore'), 'extra/\n');
      await writeBidsIgnore(out);
      expect(fs.readFileSync(path.join(out, '.bidsignore'), 'utf8')).to.equal('extra/\n*_features.*\n');
    });
  });

  describe('a derivative dataset checked by the BIDS validator', function () {
    const root = path.join(dir, 'study');
    const source = path.join(root, 'raw');
    const out = path.join(root, 'derivatives', 'encodec');
    const events = [
      path.join(source, 'sub-01', 'ses-02', 'func', 'sub-01_ses-02_task-movie_run-1_events.tsv'),
      path.join(source, 'sub-01', 'ses-02', 'func', 'sub-01_ses-02_task-movie_run-2_events.tsv'),
      path.join(source, 'sub-02', 'func', 'sub-02_task-movie_acq-mb4_run-1_events.tsv'),
    ];

    const frames = (nFrames: number): FrameSeries => ({
      kind: 'codes',
      data: Int16Array.from({ length: nFrames * 4 }, (_, i) => (i * 37) % 1024),
      nFrames,
      columns: 4,
      samplingFrequency: 75,
      startTime: 0.5 / 75,
      columnNames: ['codebook_0', 'codebook_1', 'codebook_2', 'codebook_3'],
      meta: { Description: 'EnCodec codes of the stimulus, one row per model frame', TaskName: 'movie', Model: 'encodec_24khz' },
    });

    before(async function () {
      fs.mkdirSync(source, { recursive: true });
      fs.writeFileSync(path.join(source, 'dataset_description.json'), JSON.stringify({ Name: 'raw', BIDSVersion: '1.9.0' }));
      for (const file of events) {
        fs.mkdirSync(path.dirname(file), { recursive: true });
        fs.writeFileSync(file, 'onset\tduration\tstim_file\n0\tn/a\tmovie.wav\n');
      }
      const sourceRoot = findBidsRoot(events[0]);
      expect(sourceRoot).to.equal(source);
      await writeDatasetDescription(out, { name: 'EnCodec features', version: '0.1.0', commandLine: 'encodec-native extract movie.wav --events ... --out derivatives/encodec', sourceRoot });
      await writeBidsIgnore(out);
      for (const file of events) {
        const base = derivativeBase(out, file) as string;
        fs.mkdirSync(path.dirname(base), { recursive: true });
        await writeNpy(`${base}.npy`, new Float32Array(10 * 4), [10, 4]);
        await writeSidecar(`${base}.npy`, { Description: 'EnCodec codes per volume', RepetitionTime: 2, FeatureKind: 'codes', Delays: [1, 2, 3, 4] });
        await writeFramesFile(derivativeFramesBase(out, file) as string, frames(20), 'tsv');
      }
      const concat = derivativeConcatBase(out, events.slice(0, 2)) as string;
      await writeNpy(`${concat}.npy`, new Float32Array(20 * 4), [20, 4]);
      await writeSidecar(`${concat}.npy`, { Description: 'runs 1 and 2', RepetitionTime: 2 });
    });

    function errors(issues: BidsIssue[]): string[] {
      return issues.filter((i) => i.severity === 'error').map((i) => `${i.code} ${i.subCode ?? ''} ${i.location ?? ''}`.trim());
    }

    it('passes with no errors, and only the warnings about what a pipeline cannot know', async function () {
      const { schemaVersion, issues } = await validateBids(out);
      expect(schemaVersion).to.match(/^\d+\.\d+\.\d+/);
      expect(errors(issues)).to.deep.equal([]);
      const warnings = [...new Set(issues.filter((i) => i.severity === 'warning').map((i) => `${i.code}${i.subCode ? ` ${i.subCode}` : ''}`))].sort();
      // README, Authors and License are the dataset owner's to write.
      expect(warnings).to.deep.equal(['JSON_KEY_RECOMMENDED License', 'NO_AUTHORS Authors', 'README_FILE_MISSING', 'SIDECAR_KEY_RECOMMENDED Description', 'TOO_FEW_AUTHORS']);
    });

    it('reports the features files without the .bidsignore (the check can fail)', async function () {
      const copy = path.join(dir, 'study-copy');
      fs.cpSync(out, copy, { recursive: true });
      fs.rmSync(path.join(copy, '.bidsignore'));
      const found = errors((await validateBids(copy)).issues);
      expect(found.filter((e) => e.startsWith('NOT_INCLUDED')).length).to.equal(8); // 4 .npy + 4 sidecars
      expect(found.every((e) => e.startsWith('NOT_INCLUDED') && /_features\.(npy|json)$/.test(e))).to.equal(true);
    });

    it('reports a continuous recording named with desc- instead of recording-', async function () {
      const copy = path.join(dir, 'study-desc');
      fs.cpSync(out, copy, { recursive: true });
      await writeFramesFile(path.join(copy, 'sub-02', 'func', 'sub-02_task-movie_desc-encodec'), frames(5), 'tsv');
      const found = errors((await validateBids(copy)).issues);
      expect(found).to.include('ENTITY_NOT_IN_RULE  /sub-02/func/sub-02_task-movie_desc-encodec_stim.tsv.gz');
    });
  });
});
