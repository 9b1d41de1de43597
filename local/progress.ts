/**
 * Progress of long work on the command line (load, profile, replay, run), on stderr so that stdout
 * keeps only what the command prints. On a terminal one line redrawn a few times a second:
 * "load: 12.4 MB of 80.0 MB (15%) · 3.1 MB/s · 18 s left · staging"; elsewhere (a pipe, a log
 * file, CI) a plain line every few seconds; with --json nothing at all.
 *
 * Our own (about a hundred lines, see the README's dependency notes): the commands have a counter
 * to sample (bytes read from a file stream, messages handled) rather than events to tick, and the
 * plain mode prints by time, not by count. CIVIC_ETL_PROGRESS_SECONDS sets the plain mode's
 * interval (default 5).
 */
export type ProgressUnit = 'bytes' | 'rows' | 'messages' | 'versions';

export interface ProgressOptions {
  unit: ProgressUnit;
  /** What "done" counts up to, when known: the file's size, the versions to replay. */
  total?: number;
  /** Print nothing (--json). */
  silent?: boolean;
  /** Where to draw; default process.stderr. */
  stream?: Pick<NodeJS.WriteStream, 'write'> & { isTTY?: boolean; columns?: number };
  /** Plain mode: a line every this many ms (default 5000). */
  plainEveryMs?: number;
  /** Terminal mode: redraw every this many ms (default 200). */
  redrawEveryMs?: number;
}

export interface Progress {
  /** How much is done (and the total, if it became known). */
  set(done: number, total?: number): void;
  /** Sample `read` on each redraw instead of being told (a stream's bytesRead). */
  sample(read: () => number): void;
  /** The step under way ("staging", "casting"), shown after the counts. */
  step(text: string): void;
  /** Print a line of the command's own output on stdout without tearing the progress line. */
  print(line: string): void;
  /** Stop, and clear the progress line. */
  end(): void;
}

export function startProgress(label: string, opts: ProgressOptions): Progress {
  const stream = opts.stream ?? process.stderr;
  const tty = Boolean(stream.isTTY);
  let done = 0;
  let total = opts.total;
  let step = '';
  let reader: (() => number) | undefined;
  const started = Date.now();
  const samples: { t: number; done: number }[] = [{ t: started, done: 0 }];
  let drawn = false;

  const render = (): string => {
    if (reader) done = reader();
    const now = Date.now();
    samples.push({ t: now, done });
    while (samples.length > 2 && now - samples[0]!.t > 10_000) samples.shift(); // rate over the last 10 s
    const first = samples[0]!;
    const rate = now > first.t ? ((done - first.done) * 1000) / (now - first.t) : 0;
    const parts = [`${label}: ${amount(done, opts.unit)}${total ? ` of ${amount(total, opts.unit)} (${Math.min(100, Math.floor((done / total) * 100))}%)` : ''}`];
    if (rate > 0) parts.push(`${amount(rate, opts.unit, true)}/s`);
    if (total && rate > 0 && done < total) parts.push(`${seconds((total - done) / rate)} left`);
    parts.push(`${seconds((now - started) / 1000)} elapsed`);
    if (step) parts.push(step);
    return parts.join(' · ');
  };
  const clear = () => {
    if (tty && drawn) stream.write('\r\x1b[2K');
    drawn = false;
  };
  const draw = () => {
    const text = render();
    if (tty) {
      const width = stream.columns ?? 80;
      stream.write(`\r\x1b[2K${text.length >= width ? `${text.slice(0, width - 2)}…` : text}`);
      drawn = true;
    } else {
      stream.write(`${text}\n`);
    }
  };
  const plainEvery = opts.plainEveryMs ?? (Number(process.env.CIVIC_ETL_PROGRESS_SECONDS) > 0 ? Number(process.env.CIVIC_ETL_PROGRESS_SECONDS) * 1000 : 5000);
  const timer = opts.silent ? undefined : setInterval(draw, tty ? (opts.redrawEveryMs ?? 200) : plainEvery);
  timer?.unref();

  return {
    set(n, t) {
      done = n;
      if (t !== undefined) total = t;
    },
    sample(read) {
      reader = read;
    },
    step(text) {
      step = text;
    },
    print(line) {
      clear();
      console.log(line);
      if (tty && timer) draw();
    },
    end() {
      if (timer) clearInterval(timer);
      clear();
    },
  };
}

/** 1234567 bytes → "1.2 MB"; 1234567 rows → "1,234,567 rows". */
export function amount(n: number, unit: ProgressUnit, rate = false): string {
  if (unit === 'bytes') {
    const units = ['B', 'kB', 'MB', 'GB', 'TB'];
    let i = 0;
    let v = n;
    while (v >= 1000 && i < units.length - 1) {
      v /= 1000;
      i++;
    }
    return `${i === 0 ? Math.round(v) : v.toFixed(1)} ${units[i]}`;
  }
  const value = rate && n < 10 ? n.toFixed(1) : Math.round(n).toLocaleString('en-US');
  return `${value} ${Math.round(n) === 1 && !rate ? unit.replace(/s$/, '') : unit}`;
}

/** 42 → "42 s", 125 → "2 min 05 s", 7300 → "2 h 01 min". */
export function seconds(s: number): string {
  if (s < 60) return `${Math.round(s)} s`;
  if (s < 3600) return `${Math.floor(s / 60)} min ${String(Math.floor(s % 60)).padStart(2, '0')} s`;
  return `${Math.floor(s / 3600)} h ${String(Math.floor((s % 3600) / 60)).padStart(2, '0')} min`;
}
