/** Start (and on a fresh machine install) the local services once for the whole run. */
export default async function setup(): Promise<void> {
  const { ensureServices } = await import('../local/services.ts');
  await ensureServices();
}
