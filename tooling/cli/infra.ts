import { ExpectedError } from '../../infra/errors.ts';
import { removeAbandonedContainers } from '../../infra/docker/dedicated.ts';
import { removeAbandonedInstances } from '../../infra/native/dedicated.ts';
import { dockerEngineStatus, removeCourseContainers, restartCourseContainer, listCourseContainers } from '../../infra/providers/docker.ts';
import { courseInstance, provisionNative, restartNative, stopNative } from '../../infra/providers/native.ts';
import { ensureServices } from '../../infra/resolve.ts';
import { describeEndpoint, isServiceName, SERVICE_NAMES, SERVICES, type ServiceEndpoints, type ServiceName } from '../../infra/services.ts';
import { serviceStatuses } from '../../infra/status.ts';
import { parseArgs, UsageError } from '../course/args.ts';
import { EXIT, runCommand, usageText } from '../course/cli.ts';
import { dim, FAIL, PASS, SKIP } from '../course/ui.ts';

const USAGE = usageText([
  `Usage: npm run infra -- <command> [service…]       services: ${SERVICE_NAMES.join(' ')} (default: all)`,
  '  status             which provider serves each service, and where (starts nothing)',
  '  up [service…]      make the services reachable: env address, else Docker, else local (installed if needed)',
  '  native [service…]  install and start the services on this machine, without Docker',
  '  restart <service>  restart a service the course runs (its data is kept)',
  '  down [service…]    stop what the course started (never services or containers it did not start)',
]);

const COMMANDS = ['status', 'up', 'native', 'restart', 'down'] as const;
type Command = (typeof COMMANDS)[number];

const progress = (message: string) => console.log(dim(`  … ${message}`));

function parseServices(names: readonly string[]): ServiceName[] {
  for (const name of names) {
    if (!isServiceName(name)) throw new UsageError(`unknown service "${name}" (valid services: ${SERVICE_NAMES.join(', ')})`);
  }
  return names.length > 0 ? [...new Set(names as ServiceName[])] : [...SERVICE_NAMES];
}

function printEndpoints(services: readonly ServiceName[], endpoints: ServiceEndpoints): void {
  for (const service of services) {
    const endpoint = endpoints[service];
    if (endpoint) console.log(`  ${PASS} ${describeEndpoint(endpoint)}`);
  }
}

async function status(services: ServiceName[]): Promise<number> {
  const statuses = await serviceStatuses(services);
  for (const s of statuses) {
    const label = SERVICES[s.service].label.padEnd(12);
    if (s.provider && s.url) {
      const mark = s.reachable ? PASS : FAIL;
      console.log(`  ${mark} ${label} ${s.provider.padEnd(6)} ${s.url} ${dim(`(${s.detail})`)}`);
    } else {
      console.log(`  ${SKIP} ${label} ${'-'.padEnd(6)} ${s.detail}`);
    }
    if (s.hint) console.log(dim(`      to get it: ${s.hint}`));
  }
  const docker = await dockerEngineStatus();
  console.log(dim(`  Docker engine: ${docker.available ? docker.reason : `none (${docker.reason})`}`));
  return statuses.every((s) => s.reachable) ? EXIT.ok : EXIT.failed;
}

async function up(services: ServiceName[]): Promise<number> {
  const endpoints = await ensureServices(services, { provision: true, onProgress: progress });
  printEndpoints(services, endpoints);
  return EXIT.ok;
}

async function native(services: ServiceName[]): Promise<number> {
  const endpoints = await provisionNative(services, progress);
  printEndpoints(services, endpoints);
  return EXIT.ok;
}

async function restart(services: ServiceName[], named: number): Promise<number> {
  if (named !== 1) throw new UsageError(`restart takes exactly one service (valid services: ${SERVICE_NAMES.join(', ')})`);
  const service = services[0]!;
  const spec = SERVICES[service];
  if (process.env[spec.envVar]) {
    throw new ExpectedError(`${spec.label} comes from ${spec.envVar}; the course restarts only services it runs itself`);
  }
  if ((await dockerEngineStatus()).available) {
    progress(`restarting the course's ${spec.label} container…`);
    const endpoint = await restartCourseContainer(service);
    if (!endpoint) throw new ExpectedError(`the course runs no ${spec.label} container; start one with: npm run infra -- up ${service}`);
    printEndpoints([service], { [service]: endpoint });
    return EXIT.ok;
  }
  if (courseInstance(service).pid === undefined) {
    throw new ExpectedError(`the course is not running ${spec.label} on this machine; start it with: npm run infra -- up ${service}`);
  }
  const endpoint = await restartNative(service, progress);
  printEndpoints([service], { [service]: endpoint });
  return EXIT.ok;
}

async function down(services: ServiceName[]): Promise<number> {
  const stopped = await stopNative(services);
  for (const service of stopped) console.log(`  ${PASS} stopped ${SERVICES[service].label} (started by the course on this machine)`);
  for (const service of services) {
    if (!stopped.includes(service)) console.log(dim(`  ${SKIP} ${SERVICES[service].label}: nothing the course started runs on this machine`));
  }
  const removedNodes = removeAbandonedInstances(true);
  if (removedNodes > 0) console.log(`  ${PASS} removed ${removedNodes} private service instance${removedNodes === 1 ? '' : 's'} kept by checks`);
  if ((await dockerEngineStatus()).available) {
    const removedContainers = await removeAbandonedContainers(true);
    if (removedContainers > 0) console.log(`  ${PASS} removed ${removedContainers} private container${removedContainers === 1 ? '' : 's'} left by checks`);
    const ours = (await listCourseContainers()).filter((c) => services.includes(c.service));
    if (ours.length > 0) progress(`removing ${ours.length} course container${ours.length === 1 ? '' : 's'}…`);
    for (const container of await removeCourseContainers(services)) {
      console.log(`  ${PASS} removed the ${SERVICES[container.service].label} container ${container.id.slice(0, 12)}`);
    }
  }
  console.log(dim('  data and logs stay in .course/services/ (delete it to start from scratch)'));
  return EXIT.ok;
}

async function main(): Promise<number> {
  const { positionals, flags } = parseArgs(process.argv.slice(2), ['help']);
  const [command, ...names] = positionals;
  if (flags.has('help') || command === 'help') {
    console.log(USAGE);
    return EXIT.ok;
  }
  if (command === undefined) throw new UsageError(`a command is needed (valid commands: ${COMMANDS.join(', ')})`);
  if (!(COMMANDS as readonly string[]).includes(command)) {
    throw new UsageError(`unknown command "${command}" (valid commands: ${COMMANDS.join(', ')})`);
  }
  const services = parseServices(names);
  switch (command as Command) {
    case 'status':
      return status(services);
    case 'up':
      return up(services);
    case 'native':
      return native(services);
    case 'restart':
      return restart(services, names.length);
    case 'down':
      return down(services);
  }
}

runCommand(USAGE, main);
