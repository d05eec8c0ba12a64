import { watch } from 'chokidar';

export interface FolderWatch {
  /** Resolves once the folder has been scanned: changes from then on are reported. */
  ready: Promise<void>;
  close(): Promise<void>;
}

/**
 * Calls `onChange` once per burst of changes below `folder` (debounced), for every kind of save:
 * in place, or by writing a temporary file and renaming it over the original (vim, JetBrains' safe
 * write, `sed -i`), which a plain `fs.watch` stops seeing after the first such save, because it
 * keeps watching the replaced file.
 */
export function watchFolder(folder: string, onChange: () => void, debounceMs = 250): FolderWatch {
  let timer: NodeJS.Timeout | undefined;
  const watcher = watch(folder, {
    ignoreInitial: true,
    // Editors' swap and backup files are not saves.
    ignored: (path) => /(^|[/\\])(node_modules|\.git)([/\\]|$)|~$|\.sw[px]$|\.tmp$/.test(path),
  });
  watcher.on('all', () => {
    clearTimeout(timer);
    timer = setTimeout(onChange, debounceMs);
  });
  return {
    ready: new Promise((resolve) => watcher.once('ready', () => resolve())),
    async close() {
      clearTimeout(timer);
      await watcher.close();
    },
  };
}
