import { execFileSync } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { createServer as createHttpServer } from 'node:http';
import { createServer, type Server } from 'node:https';
import type { AddressInfo } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it, vi } from 'vitest';
import { parsePipeline } from '../../contract/load.ts';
import { CreateSecretCommand } from '@aws-sdk/client-secrets-manager';
import { readJsonSecret, s3Client, secretsClient } from '../../functions/common/aws.ts';
import { logger } from '../../functions/common/logger.ts';
import { fetchRest } from '../../functions/get/fetch-rest.ts';
import { freshBucket } from './support.ts';

/** An HTTPS API on loopback with a self-signed certificate made for this run. */
let server: Server;
let base: string;
beforeAll(async () => {
  const dir = mkdtempSync(join(tmpdir(), 'civic-etl-tls-'));
  try {
    execFileSync('openssl', ['req', '-x509', '-newkey', 'rsa:2048', '-nodes', '-days', '1', '-subj', '/CN=127.0.0.1', '-keyout', join(dir, 'key.pem'), '-out', join(dir, 'cert.pem')], { stdio: 'ignore' });
    server = createServer({ key: readFileSync(join(dir, 'key.pem')), cert: readFileSync(join(dir, 'cert.pem')) }, (_req, res) => {
      res.writeHead(200, { 'content-type': 'application/json' });
      res.end(JSON.stringify([{ id: 1 }, { id: 2 }]));
    });
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  base = `https://127.0.0.1:${(server.address() as AddressInfo).port}`;
});
afterAll(() => new Promise<void>((resolve) => server.close(() => resolve())));

const datasetWith = (source: Record<string, unknown>) => parsePipeline({ project: 'it_tls', datasets: [{ name: 'items', source: { type: 'rest', url: `${base}/items`, ...source } }] }).datasets[0]!;

describe('TLS verification of fetched sources', () => {
  it('refuses a self-signed certificate by default, saying the request failed', async () => {
    const bucket = await freshBucket('it-tls');
    const error = await fetchRest({ s3: s3Client(), bucket, readSecret: readJsonSecret, retries: 0 }, datasetWith({})).catch((e: Error) => e);
    expect(String(error)).toMatch(/GET https:\/\/127\.0\.0\.1:\d+\/items failed after 1 attempts: fetch failed \(self[- ]signed certificate\)/);
  });

  it('fetches from it with verifyTls: false, warning loudly', async () => {
    const bucket = await freshBucket('it-tls');
    const warn = vi.spyOn(logger, 'warn');
    try {
      const outcome = await fetchRest({ s3: s3Client(), bucket, readSecret: readJsonSecret }, datasetWith({ verifyTls: false }));
      expect(outcome).toMatchObject({ status: 'fetched', manifest: { records: 2 } });
      expect(warn.mock.calls.map((c) => String(c[0])).join('\n')).toMatch(/TLS VERIFICATION IS OFF for dataset items/);
    } finally {
      warn.mockRestore();
    }
  });
});

describe('a request that hangs', () => {
  it('is abandoned after requestTimeoutMs and retried', async () => {
    let calls = 0;
    const slow = createHttpServer((_req, res) => {
      calls++;
      if (calls === 1) return; // never answers
      res.writeHead(200, { 'content-type': 'application/json' });
      res.end('[{"id": 7}]');
    });
    await new Promise<void>((resolve) => slow.listen(0, '127.0.0.1', resolve));
    try {
      const url = `http://127.0.0.1:${(slow.address() as AddressInfo).port}/slow`;
      const dataset = parsePipeline({ project: 'it_tls', datasets: [{ name: 'items', source: { type: 'rest', url } }] }).datasets[0]!;
      const bucket = await freshBucket('it-tls');
      const outcome = await fetchRest({ s3: s3Client(), bucket, readSecret: readJsonSecret, requestTimeoutMs: 300, sleep: async () => undefined }, dataset);
      expect(outcome).toMatchObject({ status: 'fetched', manifest: { records: 1 } });
      expect(calls).toBe(2);
    } finally {
      slow.closeAllConnections();
      await new Promise<void>((resolve) => slow.close(() => resolve()));
    }
  });
});

describe('redirects', () => {
  it('never carry a source’s credentials to another host', async () => {
    const seen: { host: string; key?: string; auth?: string }[] = [];
    const elsewhere = createHttpServer((req, res) => {
      seen.push({ host: 'elsewhere', key: req.headers['x-api-key'] as string | undefined, auth: req.headers.authorization });
      res.writeHead(200, { 'content-type': 'application/json' });
      res.end('[{"id": 1}]');
    });
    await new Promise<void>((resolve) => elsewhere.listen(0, '127.0.0.1', resolve));
    const elsewhereBase = `http://127.0.0.1:${(elsewhere.address() as AddressInfo).port}`;
    const home = createHttpServer((req, res) => {
      seen.push({ host: 'home', key: req.headers['x-api-key'] as string | undefined });
      if (req.url === '/hop') {
        res.writeHead(302, { location: '/moved' }); // same host: keeps the key
        return res.end();
      }
      res.writeHead(302, { location: `${elsewhereBase}/data` });
      res.end();
    });
    await new Promise<void>((resolve) => home.listen(0, '127.0.0.1', resolve));
    try {
      const name = `it-redirect-${Date.now()}`;
      await secretsClient().send(new CreateSecretCommand({ Name: name, SecretString: JSON.stringify({ key: 'the-key' }) }));
      const url = `http://127.0.0.1:${(home.address() as AddressInfo).port}/hop`;
      const dataset = parsePipeline({ project: 'it_tls', datasets: [{ name: 'items', source: { type: 'rest', url, auth: { type: 'apiKey', secret: name } } }] }).datasets[0]!;
      const outcome = await fetchRest({ s3: s3Client(), bucket: await freshBucket('it-tls'), readSecret: readJsonSecret }, dataset);
      expect(outcome).toMatchObject({ status: 'fetched', manifest: { records: 1 } });
      expect(seen).toEqual([
        { host: 'home', key: 'the-key' },
        { host: 'home', key: 'the-key' },
        { host: 'elsewhere', key: undefined, auth: undefined },
      ]);
    } finally {
      await new Promise<void>((resolve) => home.close(() => resolve()));
      await new Promise<void>((resolve) => elsewhere.close(() => resolve()));
    }
  });
});
