/**
 * The local services (PostgreSQL + PostGIS, moto) for the CLI and the tests: started on demand by
 * `scripts/services.sh start` (which also installs them on a fresh machine), their addresses read
 * from `.local/env` into `process.env`.
 */
import { spawn } from 'node:child_process';
import { existsSync, readFileSync } from 'node:fs';
import { connect } from 'node:net';
import { fileURLToPath } from 'node:url';

/** The repository root (this file is `<root>/local/services.ts`). */
export const REPO_ROOT = fileURLToPath(new URL('..', import.meta.url));
/** Written by `scripts/services.sh start`: shell `export NAME='value'` lines. */
export const LOCAL_ENV_FILE = fileURLToPath(new URL('../.local/env', import.meta.url));
const SERVICES_SCRIPT = fileURLToPath(new URL('../scripts/services.sh', import.meta.url));

/** What the code needs to reach the local services. */
export interface LocalEnv {
  DATABASE_URL: string;
  AWS_ENDPOINT_URL: string;
  AWS_REGION: string;
  AWS_ACCESS_KEY_ID: string;
  AWS_SECRET_ACCESS_KEY: string;
}
const KEYS = ['DATABASE_URL', 'AWS_ENDPOINT_URL', 'AWS_REGION', 'AWS_ACCESS_KEY_ID', 'AWS_SECRET_ACCESS_KEY'] as const;

/** For an endpoint of the caller's own (moto, LocalStack): its usual dummy settings. */
const FALLBACK: Record<string, string> = { AWS_REGION: 'us-east-1', AWS_ACCESS_KEY_ID: 'test', AWS_SECRET_ACCESS_KEY: 'test' };

/** A cold start installs packages (apt, pip): allow for a slow mirror, but never hang. */
const START_TIMEOUT_MS = 20 * 60_000;

let inFlight: Promise<LocalEnv> | undefined;

/**
 * Make sure the local services answer, starting (and on a fresh machine installing) them with
 * `scripts/services.sh start` when `.local/env` is missing or what it names does not answer.
 * Then put the variables of `.local/env` into `process.env`, except those already set (a
 * `DATABASE_URL` of your own wins, and the script then starts no cluster), and return the
 * values now in effect. Progress of the script goes to stderr.
 *
 * With both `DATABASE_URL` and an `AWS_ENDPOINT_URL` of your own set, nothing is started; unset
 * `AWS_REGION` and keys then default to `us-east-1` and `test`/`test`.
 */
export function ensureServices(): Promise<LocalEnv> {
  inFlight ??= ensure().finally(() => {
    inFlight = undefined;
  });
  return inFlight;
}

async function ensure(): Promise<LocalEnv> {
  let file = readEnvFile();
  const ownEndpoint = process.env.AWS_ENDPOINT_URL && process.env.AWS_ENDPOINT_URL !== file?.vars.AWS_ENDPOINT_URL;
  if (ownEndpoint && process.env.DATABASE_URL) {
    // both services given by the caller (another moto or LocalStack, another database): start nothing
    file = { vars: { ...FALLBACK, ...file?.vars }, localDatabase: false };
  } else if (!file || !(await answers(file))) {
    await runServicesScript('start');
    file = readEnvFile();
    if (!file) throw new Error(`scripts/services.sh start succeeded but wrote no ${LOCAL_ENV_FILE}`);
    if (!(await answers(file))) {
      throw new Error(`the local services in ${LOCAL_ENV_FILE} do not answer after scripts/services.sh start; see \`bash scripts/services.sh status\``);
    }
  }
  for (const [name, value] of Object.entries(file.vars)) {
    if (process.env[name] === undefined || process.env[name] === '') process.env[name] = value;
  }
  const env = {} as LocalEnv;
  for (const key of KEYS) {
    const value = process.env[key];
    if (!value) throw new Error(`${key} is neither set nor in ${LOCAL_ENV_FILE}`);
    env[key] = value;
  }
  return env;
}

interface EnvFile {
  vars: Record<string, string>;
  /** The file's database is the local cluster (not a DATABASE_URL given when it was written). */
  localDatabase: boolean;
}

function readEnvFile(): EnvFile | undefined {
  if (!existsSync(LOCAL_ENV_FILE)) return undefined;
  const text = readFileSync(LOCAL_ENV_FILE, 'utf8');
  return { vars: parseEnvFile(text), localDatabase: /^# database: local cluster/m.test(text) };
}

/** Do the services named by the file answer, as far as this process will use them? */
async function answers(file: EnvFile): Promise<boolean> {
  const endpoint = file.vars.AWS_ENDPOINT_URL;
  if (!endpoint || !(await httpAnswers(endpoint))) return false;
  if (process.env.DATABASE_URL) return true; // the caller's own database: not ours to start
  // the file names a database given at the time, but this process has none: start the local one
  if (!file.localDatabase) return false;
  const url = file.vars.DATABASE_URL;
  return url !== undefined && (await tcpAnswers(url));
}

async function httpAnswers(url: string): Promise<boolean> {
  try {
    const res = await fetch(new URL('/moto-api/', url), { signal: AbortSignal.timeout(3000) });
    await res.body?.cancel();
    return true;
  } catch {
    return false;
  }
}

function tcpAnswers(databaseUrl: string): Promise<boolean> {
  let host: string;
  let port: number;
  try {
    const u = new URL(databaseUrl);
    host = u.hostname.replace(/^\[|\]$/g, '') || '127.0.0.1';
    port = Number(u.port || 5432);
  } catch {
    return Promise.resolve(false);
  }
  return new Promise((resolve) => {
    const socket = connect({ host, port });
    const done = (ok: boolean) => {
      socket.destroy();
      resolve(ok);
    };
    socket.setTimeout(2000, () => done(false));
    socket.once('connect', () => done(true));
    socket.once('error', () => done(false));
  });
}

/** Run `scripts/services.sh <action>`, its output on our stderr (stdout may carry data). */
export function runServicesScript(action: 'start' | 'stop' | 'status' | 'clean'): Promise<void> {
  return new Promise((resolve, reject) => {
    const child = spawn('bash', [SERVICES_SCRIPT, action], {
      cwd: REPO_ROOT,
      env: process.env,
      stdio: ['ignore', 2, 2],
      timeout: START_TIMEOUT_MS,
      killSignal: 'SIGTERM',
    });
    child.once('error', (error) => reject(new Error(`could not run scripts/services.sh ${action}: ${error.message}`)));
    child.once('exit', (code, signal) => {
      if (code === 0) resolve();
      else if (signal) reject(new Error(`scripts/services.sh ${action} was stopped by ${signal} (time limit ${START_TIMEOUT_MS / 60_000} min?)`));
      else reject(new Error(`scripts/services.sh ${action} failed (exit ${code}); its messages are above`));
    });
  });
}

/**
 * The variables of a file of shell assignments (`export NAME=value`, `NAME='value'`…): single
 * and double quotes and backslash escapes as the shell reads them, no expansion. Comments and
 * blank lines are skipped.
 */
export function parseEnvFile(text: string): Record<string, string> {
  const vars: Record<string, string> = {};
  for (const raw of text.split(/\r?\n/)) {
    const line = raw.trim();
    if (!line || line.startsWith('#')) continue;
    const m = /^(?:export\s+)?([A-Za-z_][A-Za-z0-9_]*)=(.*)$/.exec(line);
    if (!m) continue;
    vars[m[1]!] = shellWord(m[2]!);
  }
  return vars;
}

function shellWord(s: string): string {
  let out = '';
  for (let i = 0; i < s.length; i++) {
    const c = s[i]!;
    if (c === "'") {
      const end = s.indexOf("'", i + 1);
      if (end < 0) throw new Error(`unterminated ' in ${LOCAL_ENV_FILE}: ${s}`);
      out += s.slice(i + 1, end);
      i = end;
    } else if (c === '"') {
      i++;
      for (; i < s.length && s[i] !== '"'; i++) {
        if (s[i] === '\\' && i + 1 < s.length && '"\\$`'.includes(s[i + 1]!)) i++;
        out += s[i];
      }
      if (i >= s.length) throw new Error(`unterminated " in ${LOCAL_ENV_FILE}: ${s}`);
    } else if (c === '\\' && i + 1 < s.length) {
      out += s[++i];
    } else if (/\s/.test(c)) {
      break; // end of the word (a trailing comment may follow)
    } else {
      out += c;
    }
  }
  return out;
}
