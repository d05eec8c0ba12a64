import { appendFileSync } from 'node:fs';
import { beforeEach } from 'vitest';

/**
 * Setup file: writes each requirement's start and end to the runner's journal, synchronously.
 * Vitest reports results in batches; when learner code blocks the process in a busy loop, the last
 * batch never leaves it. The journal still says which requirement hung and how the others ended.
 */
const journal = process.env.COURSE_JOURNAL_FILE;

if (journal) {
  beforeEach(({ task, onTestFinished }) => {
    const entry = { file: task.file.filepath, name: task.name };
    appendFileSync(journal, `${JSON.stringify({ ...entry, event: 'start', at: Date.now() })}\n`);
    onTestFinished(({ task: finished }) => {
      const state = finished.result?.state === 'fail' ? 'failed' : 'passed';
      const message = finished.result?.errors?.[0]?.message;
      appendFileSync(journal, `${JSON.stringify({ ...entry, event: 'end', state, message })}\n`);
    });
  });
}
