import type { TestProject } from 'vitest/node';
import { ensureServices } from '../../infra/resolve.ts';
import { endpointEnv, isServiceName, SERVICE_NAMES, type ServiceEndpoints, type ServiceName } from '../../infra/services.ts';

declare module 'vitest' {
  export interface ProvidedContext {
    services: ServiceEndpoints;
  }
}

/** The runner names the services of the lessons it grades; a bare `vitest` run gets them all. */
function requestedServices(): ServiceName[] {
  const listed = process.env.COURSE_SERVICES;
  if (listed === undefined) return [...SERVICE_NAMES];
  return listed.split(',').map((s) => s.trim()).filter(isServiceName);
}

export default async function setup(project: TestProject): Promise<void> {
  const endpoints = await ensureServices(requestedServices(), {
    onProgress: (message) => console.log(`[services] ${message}`),
  });
  // Child processes spawned by checks inherit these, like a deployed service reads its config.
  Object.assign(process.env, endpointEnv(endpoints));
  project.provide('services', endpoints);
}
