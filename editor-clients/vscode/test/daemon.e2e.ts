// The client module against the REAL daemon (`locusd --stdio`, which starts it), driven by
// tests/editors/test_vscode_client.py: it sets LOCUSD, LOCUS_REPO, LOCUS_GATE (a file written
// once this client watches the run: the scripted model waits for it) and LOCUS_OUT (what was
// seen, for pytest to compare with git byte for byte).
import assert from "node:assert/strict";
import { writeFileSync } from "node:fs";
import { join } from "node:path";
import { after, test } from "node:test";
import {
  type ApprovalRequest,
  LocusClient,
  PROTOCOL_VERSION,
  ProtocolMismatch,
  type ReviewView,
  type Run,
} from "../src/client";
import { awaitingReview, reviewNode, runNodes } from "../src/reviewModel";

const env = (name: string): string => {
  const value = process.env[name];
  if (!value) throw new Error(`${name} is not set (run through tests/editors/test_vscode_client.py)`);
  return value;
};
const options = { daemonPath: env("LOCUSD"), clientName: "vscode-test" };
const out: Record<string, unknown> = {};
const clients: LocusClient[] = [];
let run: Run;
let view: ReviewView;

after(async () => {
  writeFileSync(env("LOCUS_OUT"), JSON.stringify(out));
  for (const client of clients) await client.close();
});

function reviewReached(client: LocusClient, runId: string): Promise<void> {
  return new Promise((resolve) => {
    client.onNeedsYou((needs) => needs.runId === runId && needs.kind === "review" && resolve());
    client.onRunEvent((event) => event.runId === runId && event.kind === "state" && (event.text ?? "").includes("awaiting_review") && resolve());
  });
}

test("handshake with the protocol version", async () => {
  const client = await LocusClient.connect(options);
  clients.push(client);
  assert.equal(client.capabilities.protocolVersion, PROTOCOL_VERSION);
  const status = await client.status();
  assert.equal(status.protocolVersion, PROTOCOL_VERSION);
});

test("a protocol mismatch is refused, naming both versions", async () => {
  await assert.rejects(LocusClient.connect({ ...options, protocolVersion: "99.0" }), (error: unknown) => {
    assert.ok(error instanceof ProtocolMismatch, String(error));
    assert.match(error.message, /daemon speaks protocol 1\.\d+, this extension 99\.0/);
    return true;
  });
});

test("an approval is answered by one client; the other's pending prompt closes and sends nothing", async () => {
  const [answerer] = clients;
  const watcher = await LocusClient.connect(options);
  clients.push(watcher);
  const asked: ApprovalRequest[] = [];
  answerer!.onApproval(async ({ request }) => {
    asked.push(request);
    return "allow_once";
  });
  let watcherSettled!: Promise<void>;
  const watcherPrompted = new Promise<void>((resolve) =>
    watcher.onApproval(({ settled }) => {
      watcherSettled = settled;
      resolve();
      return Promise.resolve(undefined); // dismissed: nothing is sent
    }),
  );
  run = await answerer!.startRun({ repo: env("LOCUS_REPO"), task: "Fix median" });
  const reached = reviewReached(answerer!, run.runId);
  await answerer!.subscribe(run.runId);
  await watcher.subscribe(run.runId);
  writeFileSync(env("LOCUS_GATE"), run.runId); // the model may go on now
  await watcherPrompted;
  await watcherSettled; // closed by locus/approval/resolved (the other client answered)
  await reached;
  assert.equal(asked.length, 1);
  out.approval = asked[0];
  const logs = await answerer!.logs({ runId: run.runId, after: 0 });
  out.notes = logs.events.filter((event) => event.kind === "note").map((event) => event.text);
});

test("tree data: runs, reviews waiting, run → file → hunk", async () => {
  const client = clients[0]!;
  const runs = (await client.runs()).runs;
  const nodes = runNodes(runs);
  assert.ok(nodes.some((node) => node.runId === run.runId && node.context === "run.done"));
  const waiting = awaitingReview(runs);
  assert.deepEqual(waiting.map((r) => r.runId), [run.runId]);
  view = await client.review(run.runId);
  const tree = reviewNode(waiting[0]!, view);
  out.tree = tree;
});

test("review content is the daemon's, for every file", async () => {
  const client = clients[0]!;
  const contents: Record<string, unknown> = {};
  for (const file of view.files) contents[file.path] = await client.content(run.runId, file.path);
  out.contents = contents;
  out.files = view.files.map((file) => file.path);
});

test("a decision at a stale revision is refused and the review fetched again, never resent", async () => {
  const client = clients[0]!;
  const stats = view.files.find((file) => file.path === "stats.py");
  const [first, second] = stats?.hunks ?? [];
  assert.ok(first && second, "the run proposes two hunks in stats.py");
  const accepted = await client.decide(run.runId, view.revision, { [first.id]: { action: "accept" } });
  assert.equal(accepted.stale, false);
  // The worktree changes under the reviewer (as the agent's files may): the revision moves on.
  const worktree = (await client.runs()).runs.find((r) => r.runId === run.runId)?.worktree;
  assert.ok(worktree);
  writeFileSync(join(worktree, "late.txt"), "written after the review was read\n");
  const stale = await client.decide(run.runId, accepted.view.revision, { [second.id]: { action: "reject", comment: "no" } });
  assert.equal(stale.stale, true);
  assert.notEqual(stale.view.revision, accepted.view.revision);
  assert.ok(stale.view.files.some((file) => file.path === "late.txt"), "the re-fetched review shows the change");
  const still = stale.view.files.flatMap((file) => file.hunks).find((hunk) => hunk.id === second.id);
  assert.equal(still?.decision ?? null, null, "the stale decision was not sent again");
  view = stale.view;
});

test("reject the rest with a comment, then commit with a message", async () => {
  const client = clients[0]!;
  const rest = view.files.flatMap((file) => file.hunks).filter((hunk) => !hunk.decision);
  const decisions = Object.fromEntries(rest.map((hunk) => [hunk.id, { action: "reject" as const, comment: "not <b>this</b>" }]));
  const decided = await client.decide(run.runId, view.revision, decisions);
  assert.equal(decided.stale, false);
  out.decided = decided.view;
  const committed = await client.commit({ runId: run.runId, revision: decided.view.revision, message: "Accept one hunk from the editor" });
  out.commit = committed;
});
