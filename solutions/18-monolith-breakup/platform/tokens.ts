import { SignJWT } from 'jose';
import type { TokenSettings } from './config.ts';

/** Access tokens: HS256 JWTs whose subject is the user's id, valid for an hour. */
export async function issueToken(settings: TokenSettings, userId: string, ttl = '1h'): Promise<string> {
  return new SignJWT({})
    .setProtectedHeader({ alg: 'HS256', typ: 'JWT' })
    .setSubject(userId)
    .setIssuer(settings.issuer)
    .setAudience(settings.audience)
    .setIssuedAt()
    .setExpirationTime(ttl)
    .sign(settings.secret);
}
