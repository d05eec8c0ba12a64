import { inject } from 'vitest';
import { SERVICES, type ServiceName } from '../../infra/services.ts';

/** The address of a service the lesson declared; fails with a teaching message if it was not. */
export function serviceUrl(service: ServiceName): string {
  const endpoint = inject('services')[service];
  if (!endpoint) {
    throw new Error(
      `${SERVICES[service].label} was not started for this run. ` +
        `Add "${service}" to the lesson's "services" in lesson.json.`,
    );
  }
  return endpoint.url;
}

/** Environment for a child process: the service addresses, as a deployed service would get them. */
export function serviceEnv(...services: ServiceName[]): Record<string, string> {
  return Object.fromEntries(services.map((s) => [SERVICES[s].envVar, serviceUrl(s)]));
}
