/** A PostgreSQL client with PostGIS, for tests that ask PostGIS what it makes of a value. */
import pg from 'pg';

export async function postgisClient(): Promise<pg.Client> {
  const db = new pg.Client({ connectionString: process.env.DATABASE_URL });
  await db.connect();
  // a fresh database has PostGIS once the migrations ran; a test file may run before any that does
  await db.query('CREATE EXTENSION IF NOT EXISTS postgis');
  return db;
}
