/**
 * A real single-node Slurm cluster for tests, from Debian's slurmctld, slurmd, slurm-client and munge (installed by
 * scripts/install-system-deps.sh as test-only packages), in a container without systemd: munged is started as
 * user munge when it is not running (its socket folder /run/munge made first), then `slurmctld -c` and `slurmd`
 * with a private slurm.conf (free ports, state and logs in a temporary folder; proctrack/linuxproc, task/none, no
 * accounting). Clients reach it through SLURM_CONF, which `env` carries. `stop()` cancels what is left, runs
 * `scontrol shutdown` and stops munged if it started it.
 */
import { spawnSync } from 'node:child_process';
import * as fs from 'node:fs';
import * as net from 'node:net';
import * as os from 'node:os';
import * as path from 'node:path';

const PROGRAMS = ['munged', 'slurmctld', 'slurmd', 'sbatch', 'scontrol', 'sinfo', 'squeue', 'scancel'];
const MUNGE_DIR = '/run/munge';
const MUNGE_PID = path.join(MUNGE_DIR, 'munged.pid');
const MUNGE_KEY = '/etc/munge/munge.key';

function which(program: string): string | undefined {
  for (const dir of (process.env.PATH ?? '').split(':').concat(['/usr/sbin', '/usr/bin', '/sbin'])) {
    const file = path.join(dir, program);
    if (dir && fs.existsSync(file)) return file;
  }
  return undefined;
}

/** Why a cluster cannot be started here (undefined: it can). */
export function slurmUnavailable(): string | undefined {
  const missing = PROGRAMS.filter((p) => !which(p));
  if (missing.length) {
    return `the Slurm packages are not installed (${missing.join(', ')} missing): run scripts/install-system-deps.sh as root (munge slurmctld slurmd slurm-client)`;
  }
  if (process.getuid?.() !== 0) return 'starting slurmd and munged needs root';
  return undefined;
}

function sh(program: string, args: string[], env: NodeJS.ProcessEnv = process.env): { status: number | null; stdout: string; stderr: string } {
  const r = spawnSync(which(program) ?? program, args, { env, encoding: 'utf8', timeout: 60000 });
  return { status: r.status, stdout: r.stdout ?? '', stderr: r.stderr ?? (r.error?.message ?? '') };
}

function must(program: string, args: string[], env?: NodeJS.ProcessEnv): string {
  const r = sh(program, args, env);
  if (r.status !== 0) throw new Error(`${program} ${args.join(' ')} failed (${r.status}): ${r.stderr.trim()}`);
  return r.stdout;
}

/** Whether `pid` runs (a daemon that exited stays a zombie where nothing reaps orphans, as in a container). */
function alive(pid: number): boolean {
  try {
    process.kill(pid, 0);
  } catch {
    return false;
  }
  try {
    return !/^\d+ \(.*\) Z/.test(fs.readFileSync(`/proc/${pid}/stat`, 'utf8'));
  } catch {
    return true;
  }
}

function readPid(file: string): number | undefined {
  try {
    const pid = Number(fs.readFileSync(file, 'utf8').trim());
    return pid > 0 && alive(pid) ? pid : undefined;
  } catch {
    return undefined;
  }
}

const sleep = (ms: number): Promise<void> => new Promise((resolve) => setTimeout(resolve, ms));

async function waitFor(what: string, seconds: number, check: () => boolean, log?: () => string): Promise<void> {
  for (let waited = 0; waited < seconds * 1000; waited += 250) {
    if (check()) return;
    await sleep(250);
  }
  throw new Error(`timed out after ${seconds} s waiting for ${what}${log ? `\n${log()}` : ''}`);
}

function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const server = net.createServer();
    server.once('error', reject);
    server.listen(0, '127.0.0.1', () => {
      const { port } = server.address() as net.AddressInfo;
      server.close(() => resolve(port));
    });
  });
}

/** Starts munged as user munge unless it runs; returns its pid when this call started it. */
async function startMunge(): Promise<number | undefined> {
  if (readPid(MUNGE_PID)) return undefined;
  if (!fs.existsSync(MUNGE_KEY)) {
    if (which('mungekey')) must('mungekey', ['--create', '--keyfile', MUNGE_KEY]);
    else must('create-munge-key', []);
    must('chown', ['munge:munge', MUNGE_KEY]);
    fs.chmodSync(MUNGE_KEY, 0o400);
  }
  fs.mkdirSync(MUNGE_DIR, { recursive: true });
  must('chown', ['munge:munge', MUNGE_DIR]);
  fs.chmodSync(MUNGE_DIR, 0o755);
  if (which('runuser')) must('runuser', ['-u', 'munge', '--', which('munged') as string]);
  else must('su', ['-s', '/bin/sh', 'munge', '-c', which('munged') as string]);
  await waitFor('munged', 20, () => readPid(MUNGE_PID) !== undefined);
  return readPid(MUNGE_PID);
}

export interface Cluster {
  /** The environment clients need (SLURM_CONF) over process.env. */
  env: NodeJS.ProcessEnv;
  /** Resolves once job `id` (every task of an array) has left the queue (polled every 250 ms: sbatch --wait polls every 10 s). */
  waitForJob(id: string, seconds?: number): Promise<void>;
  stop(): Promise<void>;
}

/**
 * Starts a one-node cluster in a temporary folder of its own, which `stop()` removes (after the daemons are gone:
 * they read their configuration and state there until then). The node claims 8 CPUs and 16 GB whatever the machine has
 * (config_overrides), so job scripts written for real nodes (4 CPUs, 8 GB a task) run unchanged, two at once.
 */
export async function startCluster(): Promise<Cluster> {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'encodec-slurm-cluster-'));
  const host = os.hostname().split('.')[0];
  const [ctldPort, slurmdPort] = [await freePort(), await freePort()];
  for (const sub of ['state', 'spool', 'log']) fs.mkdirSync(path.join(dir, sub), { recursive: true });
  const conf = path.join(dir, 'slurm.conf');
  fs.writeFileSync(
    conf,
    [
      'ClusterName=encodectest',
      `SlurmctldHost=${host}(127.0.0.1)`,
      `SlurmctldPort=${ctldPort}`,
      `SlurmdPort=${slurmdPort}`,
      'SlurmUser=root',
      'AuthType=auth/munge',
      'ProctrackType=proctrack/linuxproc',
      'TaskPlugin=task/none',
      'JobAcctGatherType=jobacct_gather/none',
      'AccountingStorageType=accounting_storage/none',
      'SchedulerType=sched/backfill',
      'SelectType=select/cons_tres',
      'SelectTypeParameters=CR_Core',
      'SlurmdParameters=config_overrides',
      'ReturnToService=2',
      'MpiDefault=none',
      `StateSaveLocation=${dir}/state`,
      `SlurmdSpoolDir=${dir}/spool`,
      `SlurmctldPidFile=${dir}/slurmctld.pid`,
      `SlurmdPidFile=${dir}/slurmd.pid`,
      `SlurmctldLogFile=${dir}/log/slurmctld.log`,
      `SlurmdLogFile=${dir}/log/slurmd.log`,
      `NodeName=${host} NodeAddr=127.0.0.1 CPUs=8 RealMemory=16000 State=UNKNOWN`,
      `PartitionName=test Nodes=${host} Default=YES MaxTime=INFINITE State=UP`,
      '',
    ].join('\n'),
  );
  const env = { ...process.env, SLURM_CONF: conf };
  const logs = (): string =>
    ['slurmctld.log', 'slurmd.log'].map((f) => {
      const file = path.join(dir, 'log', f);
      return fs.existsSync(file) ? `${f}:\n${fs.readFileSync(file, 'utf8').split('\n').slice(-15).join('\n')}` : `${f}: none`;
    }).join('\n');
  const munged = await startMunge();
  const cluster: Cluster = {
    env,
    async waitForJob(id, seconds = 300) {
      const queued = (): string => sh('squeue', ['-h', '-j', id, '-o', '%i %T'], env).stdout.trim();
      await waitFor(`job ${id} to end`, seconds, () => queued() === '', () => `${queued()}\n${logs()}`);
    },
    async stop() {
      const pids = ['slurmctld.pid', 'slurmd.pid'].map((f) => readPid(path.join(dir, f))).filter((p): p is number => p !== undefined);
      sh('scancel', ['--user', 'root'], env);
      sh('scontrol', ['shutdown'], env);
      await waitFor('slurmctld and slurmd to stop', 30, () => pids.every((p) => !alive(p))).catch(() => pids.forEach((p) => alive(p) && process.kill(p, 'SIGKILL')));
      if (munged && alive(munged)) process.kill(munged, 'SIGTERM');
      fs.rmSync(dir, { recursive: true, force: true });
    },
  };
  try {
    must('slurmctld', ['-c', '-f', conf], env);
    must('slurmd', ['-f', conf], env);
    await waitFor('the node to be idle', 60, () => sh('sinfo', ['-h', '-o', '%T'], env).stdout.trim() === 'idle', logs);
  } catch (err) {
    await cluster.stop();
    throw err;
  }
  return cluster;
}
