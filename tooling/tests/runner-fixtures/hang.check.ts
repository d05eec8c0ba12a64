import { spawn } from 'node:child_process';
import { appendFileSync } from 'node:fs';
import { expect, it } from 'vitest';
import { registerPid } from '../../course/protocol.ts';

// Graded by tooling/tests/hang.test.ts: requirements that never end, the way learner code can hang.

it('waits for a promise that never settles', async () => {
  await new Promise(() => {});
});

it('fails with a message', () => {
  expect(1, 'one is not two').toBe(2);
});

it('blocks its process in a busy loop', () => {
  const sleeper = spawn('sleep', ['300'], { stdio: 'ignore' });
  registerPid(sleeper.pid);
  appendFileSync(process.env.HANG_SLEEPER_FILE!, `${sleeper.pid}\n`);
  for (;;) {
    // never yields
  }
});
