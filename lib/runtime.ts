/** What the native runtime reports: libtorch version, CUDA, threads. */
import { RuntimeInfo, nativeBinding } from './native';

export { RuntimeInfo };

/** libtorch version, CUDA availability and device count, thread settings, build configuration. */
export function runtimeInfo(): RuntimeInfo {
  return nativeBinding().runtimeInfo();
}
