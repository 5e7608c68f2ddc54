/**
 * The LM's fork-join helpers under contention: test/native/threads_check.cc (built with the addon by
 * CMakeLists.txt) runs a million jobs of 2-4 parts through LmPair and Lanes, two processes at once on this
 * machine's cores so that threads are preempted mid-job, and counts parts that ran twice, not at all, or after Run
 * returned. Once each 2-part job could be followed by a 4-part one whose count a late helper read with the old
 * job's epoch: a part ran twice and Run returned while it still ran (a few times per million jobs here).
 */
import * as fs from 'node:fs';
import * as path from 'node:path';

import { expect } from 'chai';

import { PACKAGE_ROOT } from '../../lib/common/package-root';
import { runProcess } from '../helpers/cli';

const CHECK = path.join(PACKAGE_ROOT, 'build', 'checks', 'encodec_native_threads_check');

interface Report {
  jobs: number;
  pairFaults: number;
  pairHelperParts: number;
  lanesJobs: number;
  lanesFaults: number;
}

async function runCheck(jobs: number): Promise<{ status: number | null; report: Report | null; stderr: string }> {
  const { status, stdout, stderr } = await runProcess(CHECK, [String(jobs)]);
  let report: Report | null = null;
  try {
    report = JSON.parse(stdout) as Report;
  } catch {
    report = null;
  }
  return { status, report, stderr };
}

describe('the LM\'s fork-join helpers (LmPair, Lanes) under contention', function () {
  this.timeout(120000);

  it('run every part of every job exactly once, finished before Run returns, passing exceptions on', async function () {
    expect(fs.existsSync(CHECK), `${CHECK} is missing: build it with npm run build:native`).to.equal(true);
    const runs = await Promise.all([runCheck(1000000), runCheck(1000000)]);
    for (const { status, report, stderr } of runs) {
      expect(report, stderr).to.not.equal(null);
      expect({ pairFaults: report!.pairFaults, lanesFaults: report!.lanesFaults, status }, stderr).to.deep.equal({
        pairFaults: 0,
        lanesFaults: 0,
        status: 0,
      });
      expect(report!.jobs).to.equal(1000000);
      expect(report!.lanesJobs).to.equal(20000);
      // the helper really shared the work (else the check proves nothing about two threads)
      expect(report!.pairHelperParts).to.be.greaterThan(10000);
    }
  });
});
