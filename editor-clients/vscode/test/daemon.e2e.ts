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
  Reconnector,
  PROTOCOL_VERSION,
  ProtocolMismatch,
  type ReviewView,
  type Run,
} from "../src/client";
import { ReviewActions } from "../src/reviewActions";
import { parseSideUri } from "../src/reviewDocs";
import { awaitingReview, reviewNode, runNodes } from "../src/reviewModel";
import * as vscode from "vscode";
import { activate } from "../src/extension";
import type { Node } from "../src/reviewModel";
import { env, until } from "./e2e-support";
import { answers, editorEvents, executed, outputs, registered, settings, shown, statusItems, textEditor } from "./vscode-mock";

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

test("the socket setting connects to the same daemon", async () => {
  const socket = join(env("XDG_RUNTIME_DIR"), "locus", "locusd.sock");
  const client = await LocusClient.connect({ socket, clientName: "vscode-test" });
  clients.push(client);
  assert.equal((await client.status()).socket, socket);
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
  let dismissed!: () => void;
  const watcherDismissed = new Promise<void>((resolve) => (dismissed = resolve));
  answerer!.onApproval(async ({ request }) => {
    asked.push(request);
    // Answer only once the watcher has dismissed its prompt and made a round trip after it:
    // had the dismissal sent anything, the daemon would have taken it first.
    await watcherDismissed;
    await watcher.status();
    return "allow_once";
  });
  let watcherSettled!: Promise<void>;
  const watcherPrompted = new Promise<void>((resolve) =>
    watcher.onApproval(({ settled }) => {
      watcherSettled = settled;
      resolve();
      setImmediate(dismissed);
      return Promise.resolve(undefined); // dismissed: nothing is sent
    }),
  );
  const progress: unknown[] = [];
  answerer!.onProgress(({ value }) => progress.push(value));
  run = await answerer!.startRun({ repo: env("LOCUS_REPO"), task: "Fix median" });
  const reached = reviewReached(answerer!, run.runId);
  await answerer!.subscribe(run.runId);
  await watcher.subscribe(run.runId);
  writeFileSync(env("LOCUS_GATE"), run.runId); // the model may go on now
  await watcherPrompted;
  await watcherSettled; // closed by locus/approval/resolved (the other client answered)
  await reached;
  assert.equal(asked.length, 1);
  assert.ok(
    progress.some((value) => (value as { kind?: string; title?: string }).kind === "begin"),
    `$/progress began (work-done progress declared in the handshake): ${JSON.stringify(progress)}`,
  );
  out.approval = asked[0];
  const logs = await answerer!.logs({ runId: run.runId, after: 0 });
  out.notes = logs.events.filter((event) => event.kind === "note").map((event) => event.text);
});

test("tree data: runs, reviews waiting, run → file → hunk", async () => {
  const client = clients[0]!;
  const runs = (await client.runs()).runs;
  const nodes = runNodes(runs);
  assert.ok(nodes.some((node) => node.runId === run.runId && node.context === "run.waiting"));
  const waiting = awaitingReview(runs);
  assert.deepEqual(waiting.map((r) => r.runId), [run.runId]);
  view = await client.review(run.runId);
  const tree = reviewNode(waiting[0]!, view);
  out.tree = tree;
});

test("the extension activated: status bar, reviews tree, diff of the daemon's sides, CodeLens, log", { timeout: 60_000 }, async () => {
  settings["locus.daemonPath"] = env("LOCUSD");
  const context = { subscriptions: [] as { dispose(): unknown }[] };
  activate(context as unknown as vscode.ExtensionContext);
  try {
    const bar = statusItems.at(-1)!;
    await until(() => bar.text.includes("1 to review"));
    assert.equal(bar.text, "$(pulse) Locus · 1 to review");
    const reviews = registered.trees.get("locus.reviews")!;
    const [root] = reviews.getChildren() as Node[];
    assert.equal(root?.runId, run.runId);
    const file = (reviews.getChildren(root) as Node[]).find((node) => node.path === "stats.py")!;
    await vscode.commands.executeCommand("locus.openDiff", file);
    const diff = executed.find((call) => call.command === "vscode.diff")!;
    const [base, proposed] = diff.args as vscode.Uri[];
    const provider = registered.content.get("locus-review")!;
    const content = await clients[0]!.content(run.runId, "stats.py");
    assert.equal(await provider.provideTextDocumentContent(base!), content.base);
    assert.equal(await provider.provideTextDocumentContent(proposed!), content.proposed);
    const lenses = registered.lenses[0]!.provideCodeLenses({ uri: proposed, lineCount: 40 });
    assert.equal(lenses.length, 3 * (reviews.getChildren(file) as Node[]).length);
    // The proposed side shown in an editor: its hunks' added lines decorated.
    const editor = textEditor(proposed as never, (content.proposed ?? "").split("\n"));
    editorEvents.visible.fire([editor]);
    const added = [...editor.decorations.values()][0] ?? [];
    const plus = new Set(view.files.find((f) => f.path === "stats.py")!.hunks.flatMap((h) => h.lines.filter((l) => l.startsWith("+")).map((l) => l.slice(1).replace(/\r?\n$/, ""))));
    const decorated = added.flatMap((r) => content.proposed!.split("\n").slice(r.start.line, r.end.line + 1));
    assert.ok(decorated.length > 0 && decorated.every((line) => plus.has(line)), JSON.stringify({ decorated, plus: [...plus] }));
    // All of the run's files in the multi-file changes view, each file's two sides.
    await vscode.commands.executeCommand("locus.openChanges", root);
    const changes = executed.find((call) => call.command === "vscode.changes")!;
    const triples = changes.args[1] as (vscode.Uri | undefined)[][];
    assert.deepEqual(triples.map((triple) => parseSideUri(triple[0]!)?.path), view.files.map((f) => f.path));
    await vscode.commands.executeCommand("locus.showLog", root);
    const log = [...outputs.values()].at(-1)!;
    assert.ok(log.some((line) => line.includes("allow once: echo approved > approved.txt")), log.join("\n"));
  } finally {
    context.subscriptions.forEach((item) => item.dispose());
  }
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
  const reviews = new Map([[run.runId, view]]);
  const actions = new ReviewActions(() => client, reviews, () => undefined);
  assert.equal(await actions.accept({ runId: run.runId, hunkId: first.id }), true);
  const seen = reviews.get(run.runId)!;
  // The worktree changes under the reviewer (as the agent's files may): the revision moves on.
  const worktree = (await client.runs()).runs.find((r) => r.runId === run.runId)?.worktree;
  assert.ok(worktree);
  writeFileSync(join(worktree, "late.txt"), "written after the review was read\n");
  const direct = await client.decide(run.runId, seen.revision, { [second.id]: { action: "reject", comment: "no" } });
  assert.equal(direct.stale, true);
  answers.push("no");
  assert.equal(await actions.reject({ runId: run.runId, hunkId: second.id }), false);
  assert.match(shown.at(-1)!.message, /fetched again, nothing was decided/);
  const now = reviews.get(run.runId)!;
  assert.notEqual(now.revision, seen.revision);
  assert.ok(now.files.some((file) => file.path === "late.txt"), "the re-fetched review shows the change");
  const still = now.files.flatMap((file) => file.hunks).find((hunk) => hunk.id === second.id);
  assert.equal(still?.decision ?? null, null, "the stale decision was not sent again");
  view = now;
});

test("Escape decides nothing; edit-then-accept; reject the rest with a comment; send back", { timeout: 60_000 }, async () => {
  const client = clients[0]!;
  const reviews = new Map([[run.runId, view]]);
  const actions = new ReviewActions(() => client, reviews, () => undefined);
  const stats = view.files.find((file) => file.path === "stats.py")!;
  answers.push(undefined);
  assert.equal(await actions.reject({ runId: run.runId, hunkId: stats.hunks[1]!.id }), false);
  assert.equal((await client.review(run.runId)).revision, view.revision);
  const odd = view.files.find((file) => file.path.startsWith("<img"))!;
  answers.push("Accept edited");
  assert.equal(await actions.edit({ runId: run.runId, path: odd.path, hunkId: odd.hunks[0]!.id }), true);
  answers.push("not <b>this</b>");
  assert.equal(await actions.all(run.runId, "reject"), true);
  out.decided = reviews.get(run.runId);
  // A new round: the agent gets the rejections back; its next run awaits review in turn.
  const nextReview = new Promise<string>((resolve) =>
    client.onNeedsYou((needs) => needs.kind === "review" && needs.runId !== run.runId && resolve(needs.runId)),
  );
  const next = await actions.sendBack(run.runId);
  assert.notEqual(next.runId, run.runId);
  assert.equal(await nextReview, next.runId);
  run = next;
  view = await client.review(run.runId);
});

test("the next round: decide what is left, then commit with a message", async () => {
  const client = clients[0]!;
  const reviews = new Map([[run.runId, view]]);
  const actions = new ReviewActions(() => client, reviews, () => undefined);
  const wanted = new Set([view.files.find((f) => f.path === "stats.py")!.hunks[0]!.id, view.files.find((f) => f.path.startsWith("<img"))!.hunks[0]!.id]);
  const decisions = Object.fromEntries(
    view.files
      .flatMap((file) => file.hunks)
      .filter((hunk) => !hunk.decision || (hunk.decision.action === "reject") === wanted.has(hunk.id))
      .map((hunk) => [hunk.id, wanted.has(hunk.id) ? { action: "accept" as const } : { action: "reject" as const, comment: "not <b>this</b>" }]),
  );
  assert.equal(await actions.decide(run.runId, decisions), true);
  out.round2 = reviews.get(run.runId);
  answers.push("Accept one hunk from the editor");
  out.commit = await actions.commit(run.runId);
});

test("after the daemon stops, the client reconnects (locusd --stdio starts a new one)", { timeout: 60_000 }, async () => {
  const states: string[] = [];
  let next!: (client: LocusClient) => void;
  let connected = new Promise<LocusClient>((resolve) => (next = resolve));
  const reconnector = new Reconnector(
    options,
    (state) => {
      states.push(state.kind);
      if (state.kind === "connected") next(state.client);
    },
    () => 50,
  );
  void reconnector.start();
  const first = await connected;
  const before = (await first.status()).pid;
  connected = new Promise<LocusClient>((resolve) => (next = resolve));
  await first.request("locus/daemon/shutdown", {}).catch(() => undefined);
  const second = await connected;
  const after = (await second.status()).pid;
  assert.notEqual(after, before);
  assert.deepEqual(states.slice(0, 2), ["connecting", "connected"]);
  assert.ok(states.slice(2).includes("disconnected"));
  assert.equal(states.at(-1), "connected");
  await reconnector.stop();
});
