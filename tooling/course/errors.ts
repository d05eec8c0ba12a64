import { ExpectedError } from '../../infra/errors.ts';

/** A lesson.json or fixture.json that is missing or does not match its schema. */
export class ManifestError extends ExpectedError {
  override name = 'ManifestError';
}
