import { ExpectedError } from '../../infra/errors.ts';
/**
 * Command-line parsing shared by the course commands.
 *
 * npm swallows flags written without `--` (`npm run lesson 07 --watch` sets npm_config_watch=true
 * and passes only `07`), so every boolean flag is also read from its npm_config_ variable.
 */
export class UsageError extends ExpectedError {
  override name = 'UsageError';
}

export interface ParsedArgs {
  positionals: string[];
  flags: Set<string>;
}

export function parseArgs(
  argv: readonly string[],
  knownFlags: readonly string[],
  env: NodeJS.ProcessEnv = process.env,
): ParsedArgs {
  const positionals: string[] = [];
  const flags = new Set<string>();
  for (const arg of argv) {
    if (arg === '-h') {
      flags.add('help');
    } else if (arg.startsWith('--')) {
      const name = arg.slice(2);
      if (!knownFlags.includes(name)) {
        const valid = knownFlags.map((flag) => `--${flag}`).join(', ');
        throw new UsageError(`unknown option "${arg}" (valid options: ${valid})`);
      }
      flags.add(name);
    } else if (arg.startsWith('-') && arg.length > 1) {
      throw new UsageError(`unknown option "${arg}" (options are spelled --name)`);
    } else {
      positionals.push(arg);
    }
  }
  for (const flag of knownFlags) {
    if (env[`npm_config_${flag.replaceAll('-', '_')}`] === 'true') flags.add(flag);
  }
  return { positionals, flags };
}
