import type { TestProject } from 'vitest/node';
import { ensureServices } from '../../infra/resolve.ts';
import { describeEndpoint, endpointEnv, isServiceName, SERVICE_NAMES, ServiceUnavailableError, type ServiceEndpoints, type ServiceName } from '../../infra/services.ts';
import { PROTOCOL_ENV, sendToRunner as send, underRunner as isUnderRunner } from '../../tooling/course/protocol.ts';

declare module 'vitest' {
  export interface ProvidedContext {
    services: ServiceEndpoints;
  }
}

/** The runner names the services of the lessons it grades; a bare `vitest` run gets them all. */
function requestedServices(): ServiceName[] {
  const listed = process.env[PROTOCOL_ENV.services];
  if (listed === undefined) return [...SERVICE_NAMES];
  return listed.split(',').map((s) => s.trim()).filter(isServiceName);
}

const underRunner = isUnderRunner();

function progress(text: string): void {
  if (underRunner) send({ type: 'progress', text });
  else console.log(`[services] ${text}`);
}

export default async function setup(project: TestProject): Promise<void> {
  let endpoints: ServiceEndpoints;
  try {
    endpoints = await ensureServices(requestedServices(), { provision: true, onProgress: progress });
  } catch (error) {
    if (underRunner && error instanceof ServiceUnavailableError) send({ type: 'fatal', text: error.message });
    throw error;
  }
  for (const endpoint of Object.values(endpoints)) {
    if (underRunner && endpoint) send({ type: 'service', text: describeEndpoint(endpoint), service: endpoint.service, url: endpoint.url });
  }
  // Child processes spawned by checks inherit these, like a deployed service reads its config.
  Object.assign(process.env, endpointEnv(endpoints));
  project.provide('services', endpoints);
}
