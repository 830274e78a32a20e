import fs from 'node:fs';
import { syncBuiltinESMExports } from 'node:module';

/**
 * A disk that fills under the in-process journal: while `full`, writes to its files
 * (journal.<generation>) fail with ENOSPC. `install()` before the bidder starts (the files it opens
 * are recognised by name), `restore()` once it is closed.
 */
export function journalDisk() {
  const open = fs.openSync;
  const write = fs.writeSync;
  const fds = new Set<number>();
  const disk = {
    full: false,
    install(): void {
      disk.full = false;
      fs.openSync = ((p: fs.PathLike, ...a: unknown[]) => {
        const fd = (open as (...x: unknown[]) => number)(p, ...a);
        if (/journal\.\d+$/.test(String(p))) fds.add(fd);
        return fd;
      }) as typeof fs.openSync;
      fs.writeSync = ((fd: number, ...a: unknown[]) => {
        if (disk.full && fds.has(fd)) throw Object.assign(new Error('ENOSPC: no space left on device, write'), { code: 'ENOSPC', errno: -28, syscall: 'write' });
        return (write as (...x: unknown[]) => number)(fd, ...a);
      }) as typeof fs.writeSync;
      syncBuiltinESMExports();
    },
    restore(): void {
      disk.full = false;
      fs.openSync = open;
      fs.writeSync = write;
      syncBuiltinESMExports();
    },
  };
  return disk;
}
