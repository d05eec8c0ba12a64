import { describe, expect, it } from 'vitest';
import { parseArgs, UsageError } from '../course/args.ts';

describe('parseArgs', () => {
  it('separates positionals from known flags', () => {
    const parsed = parseArgs(['07', '--watch'], ['watch', 'hint'], {});
    expect(parsed.positionals).toEqual(['07']);
    expect([...parsed.flags]).toEqual(['watch']);
  });

  it('reads flags that npm swallowed into npm_config_ variables', () => {
    const parsed = parseArgs(['07'], ['watch', 'hint'], { npm_config_hint: 'true' });
    expect([...parsed.flags]).toEqual(['hint']);
  });

  it('ignores npm_config_ variables that are not "true"', () => {
    const parsed = parseArgs([], ['yes'], { npm_config_yes: '' });
    expect(parsed.flags.size).toBe(0);
  });

  it('rejects an unknown flag and lists the valid ones', () => {
    expect(() => parseArgs(['--wtach'], ['watch', 'hint'], {})).toThrow(UsageError);
    expect(() => parseArgs(['--wtach'], ['watch', 'hint'], {})).toThrow(/valid options: --watch, --hint/);
  });

  it('rejects single-dash options other than -h', () => {
    expect(() => parseArgs(['-w'], ['watch'], {})).toThrow(UsageError);
    expect([...parseArgs(['-h'], ['help'], {}).flags]).toEqual(['help']);
  });
});
