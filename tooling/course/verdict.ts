import { relative } from 'node:path';
import { REPO_ROOT } from './paths.ts';
import type { CheckRun, FileResult, RequirementResult } from './run-checks.ts';
import { fileResult } from './run-checks.ts';

/**
 * The one decision of whether a check file's run passed, used by `npm run lesson`, `npm run grade`,
 * the smoke checks and `npm test`'s proofs alike.
 */
export interface FileVerdict {
  /** Every requirement ran and passed; nothing escaped them; the run was not cut short. */
  ok: boolean;
  passed: number;
  failed: number;
  /** Requirements reported as not graded here (e.g. no private broker can be started). */
  notGraded: number;
  total: number;
  /** Requirements the file has that produced no result (the run stopped before them: a hang, a crash). */
  notRun: number;
  /** The code under test (or the check) did not load: no requirement could run. */
  loadError?: string;
  /** Why there is no complete verdict: the load error, a cut-short run, or nothing ran. */
  problem?: string;
  requirements: RequirementResult[];
}

export interface VerdictOptions {
  /** Count requirements that were not graded here as acceptable (a learner's machine); proofs do not. */
  allowNotGraded?: boolean;
}

export function judgeFile(run: CheckRun, checkFile: string, options: VerdictOptions = {}): FileVerdict {
  return judge(fileResult(run, checkFile), run, options, run.collected[relative(REPO_ROOT, checkFile)]);
}

/** The verdict over every file of a run (the smoke checks). */
export function judgeRun(run: CheckRun, options: VerdictOptions = {}): FileVerdict {
  const requirements = run.files.flatMap((file) => file.requirements);
  const loadError = run.files.find((file) => file.loadError)?.loadError;
  const collected = Object.values(run.collected).reduce((sum, n) => sum + n, 0);
  return judge({ file: '', requirements, loadError }, run, options, collected || undefined);
}

function judge(file: FileResult | undefined, run: CheckRun, options: VerdictOptions, collected: number | undefined): FileVerdict {
  const requirements = file?.requirements ?? [];
  const passed = requirements.filter((r) => r.state === 'passed').length;
  const failed = requirements.filter((r) => r.state === 'failed').length;
  const notGraded = requirements.filter((r) => r.state === 'skipped').length;
  const loadError = file?.loadError;
  let problem: string | undefined;
  if (loadError) problem = loadError;
  else if (run.fatal) problem = run.fatal;
  else if (requirements.length === 0) problem = 'no requirement ran';
  else if (run.unhandledErrors.length > 0) problem = `an error escaped every requirement: ${run.unhandledErrors[0]}`;
  const notRun = Math.max(0, (collected ?? 0) - requirements.length);
  if (!problem && notRun > 0) problem = `${notRun} requirement${notRun === 1 ? '' : 's'} produced no result`;
  const ok = !problem && failed === 0 && passed > 0 && (notGraded === 0 || options.allowNotGraded === true);
  return { ok, passed, failed, notGraded, notRun, total: requirements.length, loadError, problem, requirements };
}
