import fs from 'node:fs';
import { syncBuiltinESMExports } from 'node:module';

/**
 * Makes the next fdatasync of this process fail with EIO (a disk that reported an error on
 * flush), then sync as usual. Modules that imported node:fs see it through the builtin's live
 * exports. Returns the undo, for a finally.
 */
export function failNextFdatasync(): () => void {
  const real = fs.fdatasync;
  let failed = false;
  fs.fdatasync = ((fd: number, cb: (err: NodeJS.ErrnoException | null) => void) => {
    if (failed) return real(fd, cb);
    failed = true;
    cb(Object.assign(new Error('EIO: i/o error, fdatasync'), { code: 'EIO' }));
  }) as typeof fs.fdatasync;
  syncBuiltinESMExports();
  return () => {
    fs.fdatasync = real;
    syncBuiltinESMExports();
  };
}
