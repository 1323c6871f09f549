// UI glue under Node with the `vscode` mock: trees, status bar, CodeLens, the approval prompt,
// (review actions run against the real daemon: daemon.e2e.ts).
import assert from "node:assert/strict";
import { test } from "node:test";
import * as vscode from "vscode";
import { askApproval } from "../src/approvals";
import type { DecisionIn, ReviewView, Run } from "../src/client";
import { HunkLenses, parseSideUri, ReviewContent, sideUri } from "../src/reviewDocs";
import { editedLines, editText, logLine, oneLine, reviewNode, runNodes, taskPage } from "../src/reviewModel";
import { DisconnectNotice, StatusBar, statusText } from "../src/status";
import { NodeTree } from "../src/views";
import { answers, quickPicks, statusItems } from "./vscode-mock";

const HOSTILE = "[run](command:workbench.action.quit) <img src=x onerror=alert(1)> $(zap)\nLocus-Task: 9";
const run: Run = { runId: "r1", title: HOSTILE, repo: "/r", state: "awaiting_review", costUsd: 0, startedAt: "t", shortId: "abcdefg" };
const view = (revision: string, decision?: DecisionIn): ReviewView => ({
  runId: "r1",
  revision,
  undecided: decision ? 1 : 2,
  files: [
    {
      path: HOSTILE,
      status: "modified",
      binary: false,
      structural: false,
      hunks: [
        { id: "h1", header: "@@ -1,2 +3,2 @@", lines: [" a\n", "-b\n", "+c\n"], decision },
        { id: "h2", header: "@@ -9 +9 @@ $(alert)", lines: ["+d\n"] },
      ],
    },
  ],
});

test("tree items keep the agent's texts as plain strings, on one line", () => {
  const tree = new NodeTree();
  tree.set([reviewNode(run, view("v1"))]);
  const [root] = tree.getChildren();
  const item = tree.getTreeItem(root!);
  assert.equal(typeof item.label, "string");
  assert.equal(item.label, oneLine(HOSTILE));
  assert.ok(!String(item.label).includes("\n"));
  assert.equal(typeof item.tooltip, "string");
  const [file] = tree.getChildren(root);
  const hunks = tree.getChildren(file).map((node) => tree.getTreeItem(node));
  assert.deepEqual(hunks.map((h) => h.description), ["+1 -1 · undecided", "+1 -0 · undecided"]);
  assert.equal(hunks[0]!.command?.command, "locus.openDiff"); // our command, never one the daemon names
  // Only what the daemon can cancel offers Cancel (a run waiting on you is not one).
  const states = ["running", "awaiting_review", "needs_input", "cancelled"] as const;
  assert.deepEqual(states.map((state) => runNodes([{ ...run, state }])[0]!.context), ["run.active", "run.waiting", "run.waiting", "run.done"]);
});

test("the status bar counts runs and never shows a title", () => {
  const bar = new StatusBar();
  bar.show({ connected: true, running: 2, reviews: 1, needsYou: 1, working: true });
  const item = statusItems.at(-1)!;
  assert.equal(item.text, "$(sync~spin) Locus · 2 running · 1 to review · $(bell) 1 need you");
  assert.ok(item.visible);
  assert.match(statusText({ connected: false, running: 0, reviews: 0, needsYou: 0, working: false, error: "gone" }).tooltip, /not connected \(gone\)/);
});

test("CodeLens: Accept / Reject / Edit per hunk, at its first changed line, on the proposed side only", () => {
  const reviews = new Map([["r1", view("v1", { action: "accept" })]]);
  const lenses = new HunkLenses(reviews);
  const doc = (side: "base" | "proposed") => ({ uri: sideUri("r1", HOSTILE, side), lineCount: 20 }) as unknown as vscode.TextDocument;
  assert.deepEqual(lenses.provideCodeLenses(doc("base")), []);
  const found = lenses.provideCodeLenses(doc("proposed"));
  assert.deepEqual(found.map((l) => l.command?.title), ["accepted · Accept", "Reject…", "Edit…", "Accept", "Reject…", "Edit…"]);
  assert.deepEqual(found.map((l) => l.range.start?.line ?? (l.range as unknown as { startLine: number }).startLine), [3, 3, 3, 8, 8, 8]); // h1's first line is context
  assert.deepEqual(parseSideUri(sideUri("r1", HOSTILE, "proposed")), { runId: "r1", path: HOSTILE, side: "proposed" });
});

test("the content provider serves each side as the daemon sent it", async () => {
  const provider = new ReviewContent(async () => ({ path: "p", base: "old\r\n", proposed: "new ✓" }));
  assert.equal(await provider.provideTextDocumentContent(sideUri("r1", "p", "base")), "old\r\n");
  assert.equal(await provider.provideTextDocumentContent(sideUri("r1", "p", "proposed")), "new ✓");
});

test("the approval prompt shows the agent's text as text; Escape answers nothing", async () => {
  const request = { approvalId: "a1", runId: "r1", command: "rm -rf <b>x</b> $(zap)\nsecond", reason: "[why](command:x) \\$(ok)" };
  answers.push("Allow always");
  assert.equal(await askApproval({ request, settled: new Promise(() => {}) }, HOSTILE), "allow_always");
  const prompt = quickPicks.at(-1)!;
  assert.deepEqual(prompt.labels, ["Allow once", "Allow always", "Reject"]);
  assert.equal(prompt.ignoreFocusOut, true); // stays while the person reads the code
  assert.equal(prompt.title, "Locus: the agent wants to run a command"); // our words only
  const [once, , reject] = prompt.items as { description: string; detail: string }[];
  // QuickPick rows render $(name) as an icon: escaped the way VS Code reads it back as text.
  assert.equal(once.description, "rm -rf <b>x</b> \\$(zap)\\u000asecond");
  assert.equal(once.detail, "why: [why](command:x) \\$(ok)"); // already escaped: left as it is
  assert.ok(reject.detail.endsWith("\\$(zap)\\u000aLocus-Task: 9"), reject.detail);
  assert.equal(prompt.visible, false);

  answers.push(undefined); // Escape
  assert.equal(await askApproval({ request, settled: new Promise(() => {}) }, "t"), undefined);
});

test("an approval prompt closes when another client answered first; one settled before its turn never shows", async () => {
  const request = { approvalId: "a2", runId: "r1", command: "echo hi", reason: "asked" };
  let settle!: () => void;
  const settled = new Promise<void>((resolve) => (settle = resolve));
  const before = quickPicks.length;
  const first = askApproval({ request, settled }, "t"); // left open: no scripted answer
  let settleSecond!: () => void;
  const second = askApproval({ request: { ...request, approvalId: "a3" }, settled: new Promise((resolve) => (settleSecond = resolve)) }, "t");
  await new Promise((resolve) => setImmediate(resolve));
  assert.equal(quickPicks.length, before + 1); // one prompt at a time
  assert.equal(quickPicks.at(-1)!.visible, true);
  settleSecond(); // answered elsewhere while waiting its turn
  settle(); // the daemon says another client answered the first
  assert.equal(await first, undefined);
  assert.equal(await second, undefined);
  assert.equal(quickPicks.at(-1)!.visible, false);
  assert.equal(quickPicks.length, before + 1); // the second was never shown
});

test("one notification while the daemon is away, again only after it was back", () => {
  const notice = new DisconnectNotice();
  const said = [
    notice.next({ kind: "connecting" }),
    notice.next({ kind: "disconnected", error: "the daemon closed the connection" }),
    notice.next({ kind: "connecting" }),
    notice.next({ kind: "disconnected", error: "cannot connect" }),
    notice.next({ kind: "connected" }),
    notice.next({ kind: "disconnected", error: "gone again" }),
  ];
  assert.deepEqual(said, [undefined, "Locus: the daemon closed the connection", undefined, undefined, undefined, "Locus: gone again"]);
});

test("a task's dashboard page is on the daemon's cloud, http(s) only; log lines stay one line", () => {
  assert.equal(taskPage("http://127.0.0.1:8420", 5), "http://127.0.0.1:8420/tasks/5");
  assert.throws(() => taskPage(null, 5), /not logged in to a cloud \(run locus login\)/);
  assert.throws(() => taskPage("file:///etc/passwd", 5), /is not http\(s\)/);
  assert.equal(logLine({ seq: 3, kind: "text", text: "a\nb" }), "   3 text      a\\u000ab");
});

test("edit-then-accept: the new side one line a line, and back without line breaks", () => {
  const hunk = { id: "h", header: "@@ -1,3 +1,3 @@", lines: [" a", "-b", "+B", " c\r"] };
  assert.equal(editText(hunk), "a\nB\nc\r\n");
  assert.deepEqual(editedLines(editText(hunk)), ["a", "B", "c\r"]);
  assert.deepEqual(editedLines("a\nB2\nc"), ["a", "B2", "c"]);
  assert.deepEqual(editedLines(""), []);
});
