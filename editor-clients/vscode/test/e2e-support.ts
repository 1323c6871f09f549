// Shared by the Node tests that run against the real daemon (driven by tests/editors/*.py).

/** Wait for the extension's asynchronous refresh (the node:test timeout bounds it). */
export async function until(condition: () => boolean): Promise<void> {
  while (!condition()) await new Promise((resolve) => setTimeout(resolve, 20));
}

/** A setting the pytest side passes in the environment. */
export function env(name: string): string {
  const value = process.env[name];
  if (!value) throw new Error(`${name} is not set (run through tests/editors/test_vscode_*.py)`);
  return value;
}
