import { ConfigurationError } from './errors.ts';

/** A required environment variable; a missing one fails with its name. */
export function requireEnv(name: string, env: NodeJS.ProcessEnv = process.env): string {
  const value = env[name];
  if (value === undefined || value.trim() === '') {
    throw new ConfigurationError(`environment variable ${name} is not set`);
  }
  return value;
}
