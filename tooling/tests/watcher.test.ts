import { mkdtempSync, renameSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, describe, expect, it, vi } from 'vitest';
import { watchFolder, type FolderWatch } from '../course/watcher.ts';

describe('watch mode sees every save', () => {
  let watching: FolderWatch | undefined;
  let dir: string | undefined;
  afterEach(async () => {
    await watching?.close();
    if (dir) rmSync(dir, { recursive: true, force: true });
  });

  it('re-runs after each of two saves by rename (vim, JetBrains safe write, sed -i) and after a save in place', async () => {
    dir = mkdtempSync(join(tmpdir(), 'course-watch-'));
    const file = join(dir, 'worker.ts');
    writeFileSync(file, 'export const version = 0;\n');
    let runs = 0;
    watching = watchFolder(dir, () => void (runs += 1), 50);
    await watching.ready;

    const saveByRename = (version: number) => {
      const temporary = join(dir!, `.worker.ts.${version}~`);
      writeFileSync(temporary, `export const version = ${version};\n`);
      renameSync(temporary, file);
    };
    saveByRename(1);
    await vi.waitFor(() => expect(runs, 'the first save by rename should re-run the checks').toBe(1), { timeout: 5_000, interval: 20 });
    saveByRename(2);
    await vi.waitFor(() => expect(runs, 'the second save by rename should re-run them too (fs.watch misses it)').toBe(2), { timeout: 5_000, interval: 20 });
    writeFileSync(file, 'export const version = 3;\n');
    await vi.waitFor(() => expect(runs, 'a save in place should re-run them as well').toBe(3), { timeout: 5_000, interval: 20 });
  });
});
