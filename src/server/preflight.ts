/** What must hold before the server may start: a jail addon that loads, a kernel that confines, the patched ssh2. */
import * as native from '../jail/native.js';
import { assertSsh2Patched } from '../ssh/ssh2-probe.js';

export function assertCanServe(): void {
  const addonError = native.loadError();
  if (addonError) {
    throw new Error(
      `the jail addon cannot be loaded (${addonError.message.split('\n')[0]}). Prebuilt addons ship for linux-x64 and linux-arm64 (glibc); elsewhere build it once with a C compiler, make and python3: cd "${native.packageRoot()}" && npx node-gyp rebuild`,
    );
  }
  if (!native.probe()) {
    throw new Error('this kernel cannot confine paths (openat2 with RESOLVE_IN_ROOT needs Linux 5.6 or later, not blocked by seccomp); refusing to start');
  }
  assertSsh2Patched();
}
