/**
 * CopyOut runs `COPY (...) TO STDOUT (FORMAT binary)` on a node-postgres client (a "submittable", as pg-copy-streams
 * is) and parses its rows: each field's bytes as they are stored, with no hex text in between, which is what reading
 * large bytea values costs through an ordinary query. PostgreSQL sends one row per CopyData message, the file header
 * before the first row's fields and the trailer (a field count of -1) last.
 */
export type CopyRow = (Buffer | null)[];

const SIGNATURE = Buffer.from('PGCOPY\n\xff\r\n\0', 'latin1');

export class CopyOut {
  /** callback is set by pg when a read timeout is armed: it must hear how the query ended. */
  callback?: (err: Error | null, res?: unknown) => void;
  readonly rows: CopyRow[] = [];
  readonly done: Promise<CopyRow[]>;
  #resolve!: (rows: CopyRow[]) => void;
  #reject!: (err: unknown) => void;
  #headerSeen = false;
  #failed: Error | null = null;

  constructor(readonly text: string) {
    this.done = new Promise((resolve, reject) => {
      this.#resolve = resolve;
      this.#reject = reject;
    });
    this.done.catch(() => {});
  }

  submit(connection: { query(text: string): void }): void {
    connection.query(this.text);
  }

  handleCopyData(msg: { chunk: Buffer }): void {
    if (this.#failed) return;
    try {
      this.#parse(msg.chunk);
    } catch (err) {
      this.#failed = err as Error;
    }
  }

  // The message's bytes belong to the driver's read buffer, which it reuses: every field is copied out.
  #parse(chunk: Buffer): void {
    let at = 0;
    if (!this.#headerSeen) {
      if (!chunk.subarray(0, SIGNATURE.length).equals(SIGNATURE)) throw new Error('COPY output is not binary COPY');
      at = SIGNATURE.length + 4;
      at += 4 + chunk.readUInt32BE(at);
      this.#headerSeen = true;
      if (at >= chunk.length) return;
    }
    const fields = chunk.readInt16BE(at);
    at += 2;
    if (fields < 0) return;
    const row: CopyRow = [];
    for (let i = 0; i < fields; i++) {
      const len = chunk.readInt32BE(at);
      at += 4;
      if (len < 0) {
        row.push(null);
        continue;
      }
      row.push(Buffer.from(chunk.subarray(at, at + len)));
      at += len;
    }
    this.rows.push(row);
  }

  handleReadyForQuery(): void {
    if (this.#failed) this.#reject(this.#failed);
    else this.#resolve(this.rows);
    this.callback?.(this.#failed, this.rows);
  }

  handleError(err: Error): void {
    this.#failed = err;
    this.#reject(err);
    this.callback?.(err);
  }

  // The other messages a simple query may bring: none carry anything a COPY needs.
  handleCommandComplete(): void {}
  handleRowDescription(): void {}
  handleDataRow(): void {}
  handleEmptyQuery(): void {}
  handlePortalSuspended(): void {}
  handleCopyInResponse(): void {
    this.handleError(new Error('COPY FROM is not what CopyOut runs'));
  }
}
