import type { Reporter, TestCase, TestModule } from 'vitest/node';
import { sendToRunner as send, type ReporterMessage } from './protocol.ts';
import { locationInGradedCode } from './todo.ts';

/**
 * A vitest reporter for a vitest process started by the course runner: it sends each event to the
 * runner over the IPC channel, and prints nothing itself.
 */
export type { ReporterMessage };

export default class IpcReporter implements Reporter {
  onTestCaseResult(testCase: TestCase): void {
    const result = testCase.result();
    send({
      type: 'test-end',
      id: testCase.id,
      file: testCase.module.moduleId,
      name: testCase.name,
      state: result.state,
      message: result.state === 'skipped' ? result.note : result.errors?.[0]?.message,
      where: locationInGradedCode(result.errors?.[0]?.stack),
      durationMs: Math.round(testCase.diagnostic()?.duration ?? 0),
    });
  }

  onTestModuleCollected(testModule: TestModule): void {
    send({ type: 'collected', file: testModule.moduleId, requirements: [...testModule.children.allTests()].length });
  }

  onTestModuleEnd(testModule: TestModule): void {
    send({ type: 'module-end', file: testModule.moduleId, errors: testModule.errors().map((e) => e.message) });
  }

  onTestRunEnd(_modules: ReadonlyArray<TestModule>, errors: ReadonlyArray<{ message?: string }>): void {
    send({ type: 'run-end', unhandledErrors: errors.map((e) => e.message ?? String(e)) });
  }
}
