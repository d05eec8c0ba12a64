import { writeFileSync } from 'node:fs';
import { relative } from 'node:path';
import { createInterface } from 'node:readline/promises';
import { parseArgs, UsageError } from '../course/args.ts';
import { EXIT, runCommand, usageText } from '../course/cli.ts';
import { findLesson } from '../course/lookup.ts';
import { loadLessons } from '../course/manifest.ts';
import { REPO_ROOT } from '../course/paths.ts';
import { ProgressStore } from '../course/progress.ts';
import { starterContent, starterRevision } from '../course/starter-source.ts';
import { bold, dim, green } from '../course/ui.ts';

const USAGE = usageText([
  'Usage: npm run reset NN [-- --yes]',
  '  Restores the starter files of lesson NN (your changes to them are lost) and its progress.',
  '  --yes   do not ask for confirmation',
]);

async function confirm(question: string): Promise<boolean> {
  if (!process.stdin.isTTY) throw new UsageError('reset needs a confirmation: run it in a terminal, or add --yes');
  const prompt = createInterface({ input: process.stdin, output: process.stdout });
  try {
    return /^y(es)?$/i.test((await prompt.question(question)).trim());
  } finally {
    prompt.close();
  }
}

async function main(): Promise<number> {
  const { positionals, flags } = parseArgs(process.argv.slice(2), ['yes', 'help']);
  if (flags.has('help')) {
    console.log(USAGE);
    return EXIT.ok;
  }
  if (positionals.length !== 1) throw new UsageError('reset needs a lesson number, e.g. npm run reset 07');
  const lesson = findLesson(positionals[0]!, loadLessons());
  const revision = starterRevision();
  const files = lesson.files.map((file) => `${lesson.lessonDir}/${file}`);
  // Read every starter first: nothing is overwritten unless all of them can be restored.
  const contents = files.map((file) => starterContent(revision, file));

  console.log(bold(`Reset lesson ${lesson.number} · ${lesson.title}`));
  for (const file of files) console.log(`  ${relative(REPO_ROOT, file)}`);
  if (!flags.has('yes') && !(await confirm(`Restore these ${files.length} files to the starter? Your changes are lost. [y/N] `))) {
    console.log('Nothing changed.');
    return EXIT.ok;
  }
  files.forEach((file, i) => writeFileSync(file, contents[i]!));
  new ProgressStore().forget(lesson.number);
  console.log(green(`Restored from ${revision}.`) + dim(` Start again with: npm run lesson ${lesson.number}`));
  return EXIT.ok;
}

runCommand(USAGE, main);
