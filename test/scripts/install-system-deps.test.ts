/**
 * scripts/install-system-deps.sh decides whether it can install: as root it runs apt, as a user with sudo it
 * re-runs itself with sudo, with neither it stops with what to do. Run here with a PATH of fakes (id, sudo,
 * dpkg-query, apt-get, update-alternatives) that record what they were asked to do; apt is never run.
 */
import { expect } from 'chai';
import { spawnSync } from 'node:child_process';
import * as fs from 'node:fs';
import * as path from 'node:path';

import { PACKAGE_ROOT } from '../../lib/common/package-root';
import { tempDir } from '../helpers/temp-dir';

const SCRIPT = path.join(PACKAGE_ROOT, 'scripts', 'install-system-deps.sh');
const ALL = 'libtorch-dev libopenblas0-openmp libdnnl-dev python3-torch python3-numpy ffmpeg cmake g++ make fonts-dejavu-core espeak-ng sox python3-nibabel python3-h5py python3-scipy munge slurmctld slurmd slurm-client';
const REAL_TOOLS = ['bash', 'ls', 'head', 'grep', 'sed', 'readlink', 'basename', 'dirname'];

function which(tool: string): string {
  for (const dir of ['/usr/bin', '/bin', '/usr/local/bin']) {
    const file = path.join(dir, tool);
    if (fs.existsSync(file)) return file;
  }
  throw new Error(`${tool} not found`);
}

function fake(dir: string, name: string, body: string): void {
  fs.writeFileSync(path.join(dir, name), `#!${which('bash')}\n${body}\n`, { mode: 0o755 });
}

interface Run {
  status: number | null;
  stdout: string;
  stderr: string;
  calls: string[];
}

/** Runs the script with only the fakes and a few real tools on PATH. */
function run(root: string, opts: { uid: number; sudo: boolean; installed: string }): Run {
  const bin = fs.mkdtempSync(path.join(root, 'bin-'));
  const log = path.join(bin, 'calls.log');
  for (const tool of REAL_TOOLS) fs.symlinkSync(which(tool), path.join(bin, tool));
  fake(bin, 'id', `[ "$1" = -u ] || exit 9; if [ -n "\${FAKE_ROOT:-}" ]; then echo 0; else echo ${opts.uid}; fi`);
  if (opts.sudo) fake(bin, 'sudo', `echo "sudo $*" >> "${log}"; [ "$1" = -- ] && shift; FAKE_ROOT=1 exec "$@"`);
  fake(bin, 'dpkg-query', `pkg="\${@: -1}"; case " ${opts.installed} " in *" $pkg "*) printf 'install ok installed';; esac`);
  fake(bin, 'apt-get', `echo "apt-get $* (uid $(id -u))" >> "${log}"`);
  // Reports whatever OpenBLAS this machine has as already selected, so that "all installed" means nothing to do.
  fake(bin, 'update-alternatives', `if [ "$1" = --query ]; then echo "Value: $(ls /usr/lib/*/openblas-openmp/libblas.so.3 2>/dev/null | head -n 1)"; else echo "update-alternatives $* (uid $(id -u))" >> "${log}"; fi`);
  const result = spawnSync(which('bash'), [SCRIPT], { env: { PATH: bin, HOME: root }, encoding: 'utf8' });
  const calls = fs.existsSync(log) ? fs.readFileSync(log, 'utf8').trim().split('\n') : [];
  return { status: result.status, stdout: result.stdout, stderr: result.stderr, calls };
}

describe('scripts/install-system-deps.sh privileges', function () {
  const root = tempDir('install-deps');

  it('as root installs the missing packages with apt-get, without sudo', function () {
    const r = run(root, { uid: 0, sudo: false, installed: 'cmake make g++' });
    expect(r.status, r.stderr).to.equal(0);
    expect(r.calls.filter((c) => c.startsWith('sudo'))).to.deep.equal([]);
    expect(r.calls).to.include('apt-get update -qq (uid 0)');
    const install = r.calls.find((c) => c.startsWith('apt-get install'));
    expect(install).to.match(/--no-install-recommends libtorch-dev libopenblas0-openmp libdnnl-dev python3-torch .* sox python3-nibabel python3-h5py python3-scipy munge slurmctld slurmd slurm-client \(uid 0\)$/);
    expect(install).not.to.match(/ cmake | make | g\+\+ /);
  });

  it('as a user with sudo re-runs itself with sudo, which installs as root', function () {
    const r = run(root, { uid: 1000, sudo: true, installed: '' });
    expect(r.status, r.stderr).to.equal(0);
    expect(r.stderr).to.include('re-running with sudo');
    expect(r.calls[0]).to.equal(`sudo -- bash ${fs.realpathSync(SCRIPT)}`);
    expect(r.calls).to.include('apt-get update -qq (uid 0)');
    expect(r.calls.filter((c) => c.startsWith('apt-get')).every((c) => c.endsWith('(uid 0)'))).to.equal(true);
  });

  it('as a user without sudo stops with exit 1 and says what to do, running no apt-get', function () {
    const r = run(root, { uid: 1000, sudo: false, installed: 'cmake' });
    expect(r.status).to.equal(1);
    expect(r.calls).to.deep.equal([]);
    expect(r.stderr).to.include('needs root, and sudo is not installed');
    expect(r.stderr).to.include('Run it as root');
    expect(r.stderr).to.match(/apt-get install libtorch-dev libopenblas0-openmp libdnnl-dev python3-torch python3-numpy ffmpeg g\+\+/);
  });

  it('with everything installed changes nothing and needs neither root nor sudo', function () {
    const r = run(root, { uid: 1000, sudo: false, installed: ALL });
    expect(r.status, r.stderr).to.equal(0);
    expect(r.stdout).to.include('system packages: all present');
    expect(r.calls).to.deep.equal([]);
  });
});
