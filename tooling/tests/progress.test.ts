import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { ProgressStore } from '../course/progress.ts';

function freshStore() {
  const file = join(mkdtempSync(join(tmpdir(), 'course-progress-')), 'progress.json');
  return { file, store: new ProgressStore(file) };
}

describe('ProgressStore', () => {
  it('starts empty when there is no file', () => {
    expect(freshStore().store.lesson('01')).toEqual({ hintsShown: 0 });
  });

  it('starts empty when the file is corrupt, instead of failing', () => {
    const { file, store } = freshStore();
    writeFileSync(file, '{ not json');
    expect(store.read()).toEqual({ version: 1, lessons: {} });
  });

  it('marks a lesson done on its first complete run and keeps that date', () => {
    const { store } = freshStore();
    store.recordRun('01', { passed: 3, total: 9, complete: false }, new Date('2026-01-01T00:00:00Z'));
    expect(store.lesson('01').passedAt).toBeUndefined();
    store.recordRun('01', { passed: 9, total: 9, complete: true }, new Date('2026-01-02T00:00:00Z'));
    store.recordRun('01', { passed: 8, total: 9, complete: false }, new Date('2026-01-03T00:00:00Z'));
    expect(store.lesson('01')).toMatchObject({ passedAt: '2026-01-02T00:00:00.000Z', lastResult: { passed: 8, total: 9 } });
  });

  it('hands out hints one at a time and stays on the last one', () => {
    const { store } = freshStore();
    expect([0, 1, 2, 3].map(() => store.nextHint('02', 3))).toEqual([0, 1, 2, 2]);
  });

  it('forgets a lesson', () => {
    const { store } = freshStore();
    store.nextHint('03', 2);
    store.forget('03');
    expect(store.lesson('03')).toEqual({ hintsShown: 0 });
  });
});

describe('a lesson that was done and fails again', () => {
  it('keeps the date it first passed, and records that its last run did not pass', () => {
    const store = new ProgressStore(join(mkdtempSync(join(tmpdir(), 'course-progress-')), 'progress.json'));
    store.recordRun('03', { passed: 8, total: 8, complete: true }, new Date('2026-01-01T00:00:00Z'));
    store.recordRun('03', { passed: 5, total: 8, complete: false }, new Date('2026-01-02T00:00:00Z'));
    expect(store.lesson('03')).toMatchObject({ passedAt: '2026-01-01T00:00:00.000Z', lastResult: { passed: 5, total: 8, complete: false } });
  });
});
