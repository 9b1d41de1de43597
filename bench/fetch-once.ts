/**
 * Child process of `bench/fetch.ts`: one run of the real REST fetcher (functions/get/fetch-rest.ts)
 * against the benchmark's API, into S3 (moto), alone in its process so that its peak RSS is its
 * own. Prints one JSON line: the outcome, the time fetchRest took, the event loop's utilization
 * over that time, and memory (the kernel's high-water mark at start and at the end, and what a
 * 50 ms sampler saw at the largest RSS).
 *
 *   node .local/bench/fetch-once/index.mjs <bucket> <dataset> <url> <pageSize> <concurrency> <maxPages>
 */
import { performance } from 'node:perf_hooks';
import { parsePipeline } from '../contract/load.ts';
import { s3Client } from '../functions/common/aws.ts';
import { fetchRest } from '../functions/get/fetch-rest.ts';
import { highWaterMb } from './measure.ts';

export interface FetchOnce {
  outcome: Awaited<ReturnType<typeof fetchRest>>;
  seconds: number;
  /** Share of fetchRest's time the event loop was busy (0–1). */
  eventLoopBusy: number;
  startupMb: number;
  peakMb: number;
  atPeak: { rss: number; heapTotal: number; heapUsed: number; external: number };
}

const MB = 1024 * 1024;

const [bucket, dataset, url, pageSize, concurrency, maxPages] = process.argv.slice(2) as [string, string, string, string, string, string];
const pipeline = parsePipeline({
  project: 'bench_fetch',
  datasets: [
    {
      name: dataset,
      source: {
        type: 'rest',
        url,
        pagination: { type: 'offset', limitParam: 'limit', offsetParam: 'offset', pageSize: Number(pageSize) },
        concurrency: Number(concurrency),
        maxPages: Number(maxPages),
      },
    },
  ],
});
const s3 = s3Client();
const startupMb = highWaterMb();
const atPeak = { rss: 0, heapTotal: 0, heapUsed: 0, external: 0 };
const sampler = setInterval(() => {
  const u = process.memoryUsage();
  if (u.rss / MB > atPeak.rss) Object.assign(atPeak, { rss: u.rss / MB, heapTotal: u.heapTotal / MB, heapUsed: u.heapUsed / MB, external: u.external / MB });
}, 50);

const elu = performance.eventLoopUtilization();
const started = performance.now();
const outcome = await fetchRest(
  {
    s3,
    bucket,
    readSecret: () => Promise.reject(new Error('the benchmark API needs no credentials')),
  },
  pipeline.datasets[0]!,
);
const seconds = (performance.now() - started) / 1000;
const eventLoopBusy = performance.eventLoopUtilization(elu).utilization;
clearInterval(sampler);
const result: FetchOnce = { outcome, seconds, eventLoopBusy, startupMb, peakMb: highWaterMb(), atPeak };
console.log(JSON.stringify(result));
s3.destroy();
