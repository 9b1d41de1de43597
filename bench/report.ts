/**
 * `npm run bench -- report`: how long headless Chromium takes to render the HTML quality report
 * of a load with 100,000 rows set aside (BENCH_REPORT_ROWS quarantined of 5 % more read): the
 * issue's target is under a second. Setup (not timed): 105,000 rows of iRail's Belgian stations
 * (test/helpers/stations.ts: stop times unreadable, some longitudes off the world) staged and
 * cleaned by the real steps into project `bench_report` of DATABASE_URL, with moto's S3 of
 * .local/env; the report is read back from the supplier's `reports/` prefix. Each run
 * (BENCH_RUNS, default 3) opens a new page, sets the report as its content and waits for the
 * load event and two animation frames (layout and paint done), timed whole from Node.
 * The baseline is not another tool: it is the 1,000 ms budget, so ratio = 1000 / ours (> 1: within it).
 * Ends with `RESULT report ours=<ms> baseline=1000 ratio=<x> unit=ms`.
 */
import { CreateBucketCommand, GetObjectCommand, PutBucketVersioningCommand, PutObjectCommand } from '@aws-sdk/client-s3';
import { parsePipeline } from '../contract/load.ts';
import { cleanLoad } from '../functions/clean/clean-load.ts';
import { s3Client } from '../functions/common/aws.ts';
import { getPool } from '../functions/common/db.ts';
import { reportOf } from '../functions/common/report.ts';
import { renderReportPage } from '../functions/common/report-html.ts';
import { gatherReportPage } from '../functions/common/report-page.ts';
import { migrate } from '../functions/migrate/migrate.ts';
import { stageObject } from '../functions/stage/stage-object.ts';
import { launchBrowser } from '../test/helpers/browser.ts';
import { stationsFile, stationsPipeline } from '../test/helpers/stations.ts';

const QUARANTINED = Number(process.env.BENCH_REPORT_ROWS ?? 100_000);
const RUNS = Number(process.env.BENCH_RUNS ?? 3);
const BUDGET_MS = 1000;
const BUCKET = 'bench-report';
const KEY = 'incoming/bulk/stations/stations.csv';

export async function main(): Promise<void> {
  const pipeline = parsePipeline(stationsPipeline('bench_report', 'bulk'));
  const pool = await getPool();
  const s3 = s3Client();
  try {
    await migrate(pool, undefined);
    await pool.query('DROP SCHEMA IF EXISTS bench_report CASCADE; DROP SCHEMA IF EXISTS bench_report_staging CASCADE');
    await pool.query("DELETE FROM etl.loads WHERE project = 'bench_report'");
    await migrate(pool, 'bench_report');
    await s3.send(new CreateBucketCommand({ Bucket: BUCKET })).catch(() => undefined);
    await s3.send(new PutBucketVersioningCommand({ Bucket: BUCKET, VersioningConfiguration: { Status: 'Enabled' } }));

    // one row in 21 kept as it is, so that QUARANTINED rows are set aside of 21/20 as many read
    const read = Math.round((QUARANTINED * 21) / 20);
    const body = stationsFile(read, (i) => (i % 21 === 0 ? undefined : i % 49 === 1 ? 'longitude' : 'stop-times'));
    const put = await s3.send(new PutObjectCommand({ Bucket: BUCKET, Key: KEY, Body: body }));
    const staged = await stageObject(
      { pool, s3, pipeline, notifyClean: async () => undefined },
      { bucket: BUCKET, key: KEY, versionId: put.VersionId, etag: put.ETag?.replace(/"/g, ''), size: Buffer.byteLength(body) },
    );
    if (staged.status !== 'staged') throw new Error(`not staged: ${JSON.stringify(staged)}`);
    const cleaned = await cleanLoad({ pool, pipeline, s3 }, staged.loadId);
    if (cleaned.status !== 'loaded') throw new Error(`not loaded: ${JSON.stringify(cleaned)}`);
    const out = await s3.send(new GetObjectCommand({ Bucket: BUCKET, Key: 'reports/bulk/stations/stations.csv.report.html' }));
    const html = await out.Body!.transformToString();
    console.log(
      `load ${staged.loadId}: ${read.toLocaleString('en')} rows read, ${cleaned.rowsQuarantined.toLocaleString('en')} set aside; HTML report ${Buffer.byteLength(html).toLocaleString('en')} bytes`,
    );

    // for reference (not in RESULT): gathering and writing the page again, as the clean step did after its commit
    const report = await reportOf(pool, staged.loadId);
    const writing = performance.now();
    const again = renderReportPage(await gatherReportPage(pool, report!, 'en'));
    console.log(`report gathered in PostgreSQL and written as HTML in ${(performance.now() - writing).toFixed(0)} ms (${Buffer.byteLength(again).toLocaleString('en')} bytes)`);

    const browser = await launchBrowser();
    const times: number[] = [];
    try {
      for (let run = 0; run < RUNS; run++) {
        const context = await browser.newContext({ viewport: { width: 1200, height: 900 } });
        const page = await context.newPage();
        await page.route('**/*', (route) => route.abort('blockedbyclient'));
        const started = performance.now();
        await page.setContent(html, { waitUntil: 'load' });
        await page.evaluate('new Promise((done) => requestAnimationFrame(() => requestAnimationFrame(done)))');
        const ms = performance.now() - started;
        const features = await page.locator('.feature').count();
        await context.close();
        times.push(ms);
        console.log(`run ${run + 1}: ${ms.toFixed(0)} ms (${features.toLocaleString('en')} map features drawn)`);
      }
    } finally {
      await browser.close();
    }
    const median = [...times].sort((a, b) => a - b)[Math.floor(times.length / 2)]!;
    console.log(`median of ${RUNS}: ${median.toFixed(0)} ms; baseline: the ${BUDGET_MS} ms budget of the issue (not another tool)`);
    console.log(`RESULT report ours=${median.toFixed(0)} baseline=${BUDGET_MS} ratio=${(BUDGET_MS / median).toFixed(2)} unit=ms`);
  } finally {
    await pool.end();
  }
}
