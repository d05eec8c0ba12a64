import { existsSync, readdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { loadFixtures, loadLessons } from '../course/manifest.ts';
import { fixturePatches, materializeFixture } from '../course/targets.ts';
import { LESSONS_DIR, REPO_ROOT } from '../course/paths.ts';
import { isServiceName, type ServiceName } from '../../infra/services.ts';

const lessons = loadLessons();

/** Services a check reaches: its fixtures (pg, rabbit, kafka, redis, etcd) and serviceUrl/serviceEnv. */
function servicesUsedBy(source: string): Set<ServiceName> {
  const used = new Set<ServiceName>();
  const fixtures: Record<string, ServiceName> = { pg: 'postgres', rabbit: 'rabbitmq', kafka: 'kafka', redis: 'redis', etcd: 'etcd' };
  for (const [, params] of source.matchAll(/async \(\{([^}]*)\}/g)) {
    for (const name of params!.split(',').map((p) => p.trim().split(':')[0]!.trim())) if (fixtures[name]) used.add(fixtures[name]!);
  }
  for (const [, args] of source.matchAll(/service(?:Url|Env)\(([^)]*)\)/g)) {
    for (const [, name] of args!.matchAll(/'(\w+)'/g)) if (isServiceName(name!)) used.add(name);
  }
  return used;
}

describe('course structure', () => {
  it('has each lesson under its fixed number from the course map, once', () => {
    // The numbering is fixed (docs and workshop material refer to lessons by number); lessons may
    // land out of order, so a gap is allowed, a number outside the map or used twice is not.
    const map = readFileSync(join(REPO_ROOT, 'docs', 'README.md'), 'utf8');
    const numbers = lessons.map((l) => l.number);
    expect(new Set(numbers).size, 'two lessons share a number').toBe(numbers.length);
    for (const number of numbers) expect(map, `docs/README.md has no row for lesson ${number}`).toMatch(new RegExp(`^\\| ${number} \\|`, 'm'));
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

    it('has a TODO in the starter of every file the learner edits', () => {
      const without = lesson.files.filter((file) => !readFileSync(join(lesson.lessonDir, file), 'utf8').includes('TODO'));
      expect(without, `these files of lessons/${lesson.slug}/ are listed for editing but have nothing to do`).toEqual([]);
    });

    it('gives the same code in its starter and its solution for every file the learner does not edit', () => {
      const given = readdirSync(lesson.solutionDir, { recursive: true }).map(String)
        .filter((file) => file.endsWith('.ts') && !lesson.files.includes(file));
      const differ = given.filter((file) => readFileSync(join(lesson.lessonDir, file), 'utf8') !== readFileSync(join(lesson.solutionDir, file), 'utf8'));
      expect(differ, `these given files differ between lessons/${lesson.slug}/ and solutions/${lesson.slug}/`).toEqual([]);
    });

    it('keeps the files it shares with another lesson byte for byte the same', () => {
      const differ = Object.entries(lesson.sameAs).filter(([file, other]) => {
        const theirs = join(REPO_ROOT, 'solutions', other, file);
        return !existsSync(theirs) || readFileSync(theirs, 'utf8') !== readFileSync(join(lesson.solutionDir, file), 'utf8');
      }).map(([file, other]) => `${file} (solutions/${lesson.slug}/${file} vs solutions/${other}/${file})`);
      expect(differ, 'lesson.json "sameAs" says these are copies, but they differ: copy the newer one over the other').toEqual([]);
    });

    it('declares every shared service its check uses', () => {
      const used = servicesUsedBy(readFileSync(lesson.checkFile, 'utf8'));
      const undeclared = [...used].filter((service) => !lesson.services.includes(service));
      expect(undeclared, `checks/${lesson.slug}.test.ts uses these services, but lessons/${lesson.slug}/lesson.json does not declare them`).toEqual([]);
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
