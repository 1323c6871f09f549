// The client's own checks, without a daemon: a socket directory another user could have made
// is refused, saying which setting and why; a missing daemon program is named.
import assert from "node:assert/strict";
import { chmodSync, mkdtempSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { test } from "node:test";
import { backoff, LocusClient, LocusConnectError } from "../src/client";

test("a socket in a directory with group/other access is refused before connecting", async () => {
  const dir = mkdtempSync(join(tmpdir(), "locus-sock-"));
  chmodSync(dir, 0o755);
  await assert.rejects(LocusClient.connect({ socket: join(dir, "locusd.sock") }), (error: unknown) => {
    assert.ok(error instanceof LocusConnectError);
    assert.match(error.message, /^locus\.socket: .* must be a directory of yours with mode 0700/);
    return true;
  });
});

test("a daemon program that is not there is named with the setting to fix", async () => {
  await assert.rejects(LocusClient.connect({ daemonPath: "/nonexistent/locusd" }), (error: unknown) => {
    assert.ok(error instanceof LocusConnectError);
    assert.match(error.message, /^locus\.daemonPath: cannot run \/nonexistent\/locusd/);
    return true;
  });
});

test("backoff doubles and is capped", () => {
  assert.deepEqual([0, 1, 2, 3, 10].map((n) => backoff(n)), [500, 1000, 2000, 4000, 30000]);
});
