// A binary and a big file against the REAL daemon, driven by
// tests/editors/test_vscode_whole_files.py (LOCUSD, LOCUS_REPO, LOCUS_OUT): the run's review
// shows them as plain diffs decided whole; the lenses' targets decide them by path (accept the
// big one, reject the binary with a comment) and the accepted one is committed.
import assert from "node:assert/strict";
import { writeFileSync } from "node:fs";
import { test } from "node:test";
import type * as vscode from "vscode";
import { LocusClient } from "../src/client";
import { ReviewActions } from "../src/reviewActions";
import { HunkLenses, ReviewContent, sideUri } from "../src/reviewDocs";
import { plainDiff, reviewNode } from "../src/reviewModel";
import { env } from "./e2e-support";
import { answers } from "./vscode-mock";

test("a binary and a big file: plain diffs, decided whole, the accepted one committed", { timeout: 120_000 }, async () => {
  const client = await LocusClient.connect({ daemonPath: env("LOCUSD"), clientName: "vscode-test" });
  const out: Record<string, unknown> = {};
  try {
    const run = await client.startRun({ repo: env("LOCUS_REPO"), task: "Add the data" });
    let state = run.state;
    while (state !== "awaiting_review") {
      if (["failed", "cancelled", "needs_input"].includes(state)) {
        const logs = await client.logs({ runId: run.runId, after: 0 });
        assert.fail(`the run is ${state}: ${JSON.stringify(logs.events.map((event) => event.text))}`);
      }
      await new Promise((resolve) => setTimeout(resolve, 50));
      state = (await client.runs()).runs.find((r) => r.runId === run.runId)!.state;
    }
    const reviews = new Map([[run.runId, await client.review(run.runId)]]);
    const view = reviews.get(run.runId)!;
    const byPath = (path: string) => view.files.find((file) => file.path === path)!;
    assert.deepEqual([byPath("logo.bin"), byPath("data.csv")].map(plainDiff), [true, true]);
    assert.equal(byPath("logo.bin").binary, true);
    const whole = reviewNode(run, view).children!.filter((file) => file.path !== "stats.py");
    assert.deepEqual(whole.map((file) => [file.path, file.context, file.children!.length]), [
      ["data.csv", "review.file.whole", 0],
      ["logo.bin", "review.file.whole", 0],
    ]);
    const lenses = new HunkLenses(reviews);
    const target = (path: string, title: string) =>
      lenses
        .provideCodeLenses({ uri: sideUri(run.runId, path, "proposed"), lineCount: 9000 } as unknown as vscode.TextDocument)
        .find((lens) => lens.command?.title === title)!.command!.arguments![0] as { runId: string; path: string };
    const content = new ReviewContent((runId, path) => client.content(runId, path), reviews);
    assert.match(await content.provideTextDocumentContent(sideUri(run.runId, "logo.bin", "proposed")), /^\(binary file, after/);
    const big = await client.content(run.runId, "data.csv");
    assert.equal(await content.provideTextDocumentContent(sideUri(run.runId, "data.csv", "proposed")), big.proposed);

    const actions = new ReviewActions(() => client, reviews, () => undefined);
    assert.equal(await actions.accept(target("data.csv", "Accept file")), true);
    answers.push("no binaries in this repository");
    assert.equal(await actions.reject(target("logo.bin", "Reject file…")), true);
    answers.push("keep the median as it is");
    assert.equal(await actions.all(run.runId, "reject"), true); // stats.py's hunks, the rest
    const decided = reviews.get(run.runId)!;
    out.decisions = Object.fromEntries(decided.files.map((file) => [file.path, file.decision ?? null]));
    out.undecided = decided.undecided;
    answers.push("Add the data, not the logo");
    out.commit = await actions.commit(run.runId);
  } finally {
    writeFileSync(env("LOCUS_OUT"), JSON.stringify(out));
    await client.close();
  }
});
