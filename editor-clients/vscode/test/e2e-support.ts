// Shared by the Node tests that run against the real daemon (driven by tests/editors/*.py).

/** Wait for the extension's asynchronous refresh. A hang guard, not a speed check: node:test's
 * timeout fails the test but cannot stop this loop, which would keep Node (and its `finally`
 * blocks, which write what pytest reads) from ever ending. */
export async function until(condition: () => boolean, what = "the condition", guardMs = 100_000): Promise<void> {
  const deadline = Date.now() + guardMs;
  while (!condition()) {
    if (Date.now() > deadline) throw new Error(`gave up waiting for ${what}`);
    await new Promise((resolve) => setTimeout(resolve, 20));
  }
}

/** A setting the pytest side passes in the environment. */
export function env(name: string): string {
  const value = process.env[name];
  if (!value) throw new Error(`${name} is not set (run through tests/editors/test_vscode_*.py)`);
  return value;
}
