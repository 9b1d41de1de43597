/**
 * Imported first by each Lambda entry (functions/<step>/handler.ts), for its side effect: stack
 * traces mapped to the sources when read (stack-maps.ts), from before any other module of the
 * bundle runs (esbuild keeps the order of imports).
 */
import { mapStackTracesOnDemand } from './stack-maps.ts';

mapStackTracesOnDemand();
