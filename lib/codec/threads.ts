/**
 * Thread policy. libtorch's intra-op thread count is per OS thread, so the addon sets it inside the worker
 * thread that runs each computation (native/session.cc), not once at load. Several files at once (`jobs`)
 * share the cores: each model gets floor(cores / jobs) threads, so jobs x threads never exceeds the cores
 * (oversubscribed OpenMP threads spin and slow everyone down).
 */
import * as os from 'node:os';
import { rangeError } from '../common/errors';

/** Cores this process may use (os.availableParallelism where Node has it). */
export function availableCores(): number {
  return typeof os.availableParallelism === 'function' ? os.availableParallelism() : os.cpus().length;
}

/**
 * Intra-op threads for each of `jobs` models running at once: max(1, floor(cores / jobs)). With one job,
 * all cores (2 on a 2-core machine, 16 on 16 cores: the convolutions scale with cores, and chunk batching
 * gives the LSTM matrix products to split).
 */
export function threadsPerJob(jobs = 1, cores = availableCores()): number {
  if (!Number.isInteger(jobs) || jobs < 1) throw rangeError(`jobs must be a positive integer, got ${String(jobs)}`);
  return Math.max(1, Math.floor(cores / jobs));
}
