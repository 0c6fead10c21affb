/** thrown runs fn and returns what it throws; it fails the test if fn returns normally. */
export function thrown(fn: () => unknown): Error & { code?: string; field?: string; hint?: string } {
  try {
    fn();
  } catch (err) {
    if (err instanceof Error) return err;
    throw new Error(`threw a non-Error: ${String(err)}`);
  }
  throw new Error('expected a throw, but it returned normally');
}
