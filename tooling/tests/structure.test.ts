import { existsSync, readdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { loadFixtures, loadLessons } from '../course/manifest.ts';
import { fixturePatches, materializeFixture } from '../course/targets.ts';
import { LESSONS_DIR, REPO_ROOT } from '../course/paths.ts';

const lessons = loadLessons();

describe('course structure', () => {
  it('has lessons numbered 01, 02, … without gaps', () => {
    expect(lessons.map((l) => l.number)).toEqual(lessons.map((_, i) => String(i + 1).padStart(2, '0')));
  });

  it('loads every folder in lessons/ as a lesson (no stray folders)', () => {
    const folders = readdirSync(LESSONS_DIR, { withFileTypes: true }).filter((e) => e.isDirectory()).map((e) => e.name);
    expect(folders.sort()).toEqual(lessons.map((l) => l.slug));
  });

  describe.each(lessons.map((lesson) => [lesson.slug, lesson] as const))('%s', (_slug, lesson) => {
    it('has a starter and a solution with every file the learner edits', () => {
      for (const file of lesson.files) {
        expect(existsSync(join(lesson.lessonDir, file)), `lessons/${lesson.slug}/${file}`).toBe(true);
        expect(existsSync(join(lesson.solutionDir, file)), `solutions/${lesson.slug}/${file}`).toBe(true);
      }
    });

    it('has the same files in its starter and its solution', () => {
      const starter = readdirSync(lesson.lessonDir, { recursive: true }).map(String).filter((f) => f !== 'lesson.json').sort();
      const solution = readdirSync(lesson.solutionDir, { recursive: true }).map(String).sort();
      expect(solution).toEqual(starter);
    });

    it('is listed in the README and the course map under its own title', () => {
      const readme = readFileSync(join(REPO_ROOT, 'README.md'), 'utf8');
      const map = readFileSync(join(REPO_ROOT, 'docs', 'README.md'), 'utf8');
      expect(readme, 'README.md').toContain(`[${lesson.title}](docs/${lesson.slug}.md)`);
      expect(map, 'docs/README.md').toContain(`[${lesson.title}](${lesson.slug}.md)`);
    });

    it('has a check file', () => {
      expect(existsSync(lesson.checkFile), `checks/${lesson.slug}.test.ts`).toBe(true);
    });

    it('has a doc chapter with a Mermaid diagram', () => {
      expect(existsSync(lesson.docFile), `docs/${lesson.slug}.md`).toBe(true);
      expect(readFileSync(lesson.docFile, 'utf8')).toContain('```mermaid');
    });

    it('has known-wrong fixtures, each a patch that still applies to the solution', () => {
      const fixtures = loadFixtures(lesson);
      expect(fixtures.length, `checks/fixtures/${lesson.slug}/ should hold the plausible mistakes`).toBeGreaterThan(0);
      for (const fixture of fixtures) {
        expect(fixturePatches(fixture).length, `${fixture.name} has no .patch file`).toBeGreaterThan(0);
        expect(() => materializeFixture(lesson, fixture), fixture.name).not.toThrow();
      }
    });
  });
});
