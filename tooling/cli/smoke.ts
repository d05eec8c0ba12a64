import { existsSync } from 'node:fs';
import { join } from 'node:path';
import { parseArgs, UsageError } from '../course/args.ts';
import { EXIT, runCommand, usageText } from '../course/cli.ts';
import { REPO_ROOT, SOLUTIONS_DIR } from '../course/paths.ts';
import { runChecks } from '../course/run-checks.ts';
import { judgeRun } from '../course/verdict.ts';
import { bold, FAIL, indent, PASS, red } from '../course/ui.ts';
import { isServiceName, SERVICE_NAMES, SERVICES, type ServiceName } from '../../infra/services.ts';

const USAGE = usageText([
  `Usage: npm run smoke [-- ${SERVICE_NAMES.join(' ')}]`,
  '  Proves that each service is the real thing and reachable: a Redis stream round trip, a RabbitMQ',
  '  publish-confirm-consume, a Kafka produce/consume through a consumer group, a PostgreSQL transaction,',
  '  an etcd key under a lease that a prefix watch sees come and go.',
  '  Run it before a workshop against the shared brokers (with REDIS_URL, AMQP_URL, … set).',
]);

async function main(): Promise<number> {
  const { positionals, flags } = parseArgs(process.argv.slice(2), ['help']);
  if (flags.has('help')) {
    console.log(USAGE);
    return EXIT.ok;
  }
  for (const name of positionals) {
    if (!isServiceName(name)) throw new UsageError(`unknown service "${name}" (valid services: ${SERVICE_NAMES.join(', ')})`);
  }
  const services = (positionals.length > 0 ? positionals : [...SERVICE_NAMES]) as ServiceName[];
  const files = services.map((service) => join(REPO_ROOT, 'checks', 'smoke', `${service}.test.ts`));
  for (const file of files) if (!existsSync(file)) throw new Error(`missing smoke check ${file}`);

  console.log(bold(`Smoke checks: ${services.map((s) => SERVICES[s].label).join(', ')}`));
  const run = await runChecks({
    files,
    targetRoot: SOLUTIONS_DIR,
    services,
    timeoutSeconds: 60,
    onProgress: (line) => console.log(`  … ${line}`),
    onRequirement: (result) => {
      console.log(`  ${result.state === 'passed' ? PASS : FAIL} ${result.name}`);
      if (result.message) console.log(indent(red(result.message), 6));
    },
  });
  for (const file of run.files) if (file.loadError) console.log(indent(red(`${file.file}: ${file.loadError}`), 2));
  if (run.fatal) console.log(red(run.fatal));
  return judgeRun(run).ok ? EXIT.ok : EXIT.failed;
}

runCommand(USAGE, main);
