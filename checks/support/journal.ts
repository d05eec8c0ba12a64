import { beforeEach } from 'vitest';
import { appendJournal, PROTOCOL_ENV } from '../../tooling/course/protocol.ts';

/**
 * Setup file: writes each requirement's start and end to the runner's journal, synchronously.
 * Vitest reports results in batches; when learner code blocks the process in a busy loop, the last
 * batch never leaves it. The journal still says which requirement hung and how the others ended.
 */
const journal = process.env[PROTOCOL_ENV.journalFile];

if (journal) {
  beforeEach(({ task, onTestFinished }) => {
    const entry = { file: task.file.filepath, name: task.name };
    appendJournal(journal, { ...entry, event: 'start', at: Date.now() });
    onTestFinished(({ task: finished }) => {
      const result = finished.result?.state;
      const state = result === 'fail' ? 'failed' : result === 'skip' ? 'skipped' : 'passed';
      const message = finished.result?.errors?.[0]?.message;
      appendJournal(journal, { ...entry, event: 'end', at: Date.now(), state, message });
    });
  });
}
