// UI glue of the review under the `vscode` mock: decorations that follow the person's edits,
// binaries and big files reviewed whole as a plain diff, and the multi-file changes view (with
// its fallback to one diff per file).
import assert from "node:assert/strict";
import { test } from "node:test";
import * as vscode from "vscode";
import { changeTriples, hasChangesView, openChanges } from "../src/changesView";
import type { FileView, ReviewView, Run } from "../src/client";
import { HunkDecorations, inWorktree } from "../src/decorations";
import { HunkLenses, ReviewContent, sideUri } from "../src/reviewDocs";
import { PLAIN_DIFF_LINES, plainDiff, reviewNode } from "../src/reviewModel";
import { executed, failing, setVersion, textEditor, window, workspace } from "./vscode-mock";

const HOSTILE = "[x](command:workbench.action.quit) $(zap).bin";
const text: FileView = {
  path: "src/a.py",
  status: "modified",
  binary: false,
  structural: false,
  hunks: [
    { id: "h1", header: "@@ -1,3 +1,3 @@", lines: [" one\n", "-two\n", "+TWO\n", " three\n"] },
    { id: "h2", header: "@@ -8,2 +8,3 @@", lines: [" eight\n", "+eight and a half\n", " nine\n"] },
  ],
};
const binary: FileView = { path: HOSTILE, status: "binary", binary: true, structural: true, hunks: [] };
const bigLines = Array.from({ length: PLAIN_DIFF_LINES + 1 }, (_, i) => `+line ${i}\n`);
const big: FileView = { path: "data/big.csv", status: "added", binary: false, structural: false, hunks: [{ id: "hb", header: `@@ -0,0 +1,${bigLines.length} @@`, lines: bigLines }] };
const view: ReviewView = { runId: "r1", revision: "v1", undecided: 5, files: [text, binary, big] };
const run: Run = { runId: "r1", title: "t", repo: "/r", state: "awaiting_review", costUsd: 0, startedAt: "t", shortId: "abcdefg", worktree: "/wt" };
const lines = ["one", "TWO", "three", "four", "five", "six", "seven", "eight", "eight and a half", "nine"];

type MockEditor = ReturnType<typeof textEditor>;
const spans = (editor: MockEditor, type: unknown) =>
  (editor.decorations.get(type) ?? []).map((r) => `${r.start.line}:${r.start.character}-${r.end.line}:${r.end.character}`);

test("decorations: added lines and removed places of each hunk, on the proposed side and the worktree file", () => {
  const reviews = new Map([["r1", view]]);
  const decorations = new HunkDecorations(reviews, (document) =>
    document.uri.scheme === "file" && document.uri.fsPath === "/wt/src/a.py" ? { runId: "r1", path: "src/a.py" } : undefined,
  );
  const proposed = textEditor(sideUri("r1", "src/a.py", "proposed") as never, lines);
  const base = textEditor(sideUri("r1", "src/a.py", "base") as never, lines);
  const worktree = textEditor(vscode.Uri.file("/wt/src/a.py") as never, lines);
  const elsewhere = textEditor(vscode.Uri.file("/other/src/a.py") as never, lines);
  for (const editor of [proposed, base, worktree, elsewhere]) decorations.show(editor as unknown as vscode.TextEditor);
  for (const editor of [proposed, worktree]) {
    assert.deepEqual(spans(editor, decorations.added), ["1:0-1:3", "8:0-8:16"]);
    assert.deepEqual(spans(editor, decorations.removed), ["1:0-1:0"]);
  }
  for (const editor of [base, elsewhere]) assert.deepEqual(spans(editor, decorations.added), []);
});

test("a worktree file is named as the review names it; nothing outside the worktree is", () => {
  assert.deepEqual(
    ["/wt/src/a.py", "/wt/..odd", "/wt", "/wt/../x", "/wt2/a", "/other"].map((file) => inWorktree("/wt", file)),
    ["src/a.py", "..odd", undefined, undefined, undefined, undefined],
  );
});

test("decorations follow the person's edits above and inside a hunk, and re-anchor on a new review unless unsaved", () => {
  const reviews = new Map([["r1", view]]);
  const decorations = new HunkDecorations(reviews, () => ({ runId: "r1", path: "src/a.py" }));
  const editor = textEditor(vscode.Uri.file("/wt/src/a.py") as never, [...lines]);
  window.visibleTextEditors = [editor];
  workspace.textDocuments = [editor.document];
  decorations.show(editor as unknown as vscode.TextEditor);
  const edit = (line: number, character: number, inserted: string) =>
    decorations.changed({
      document: editor.document,
      contentChanges: [{ range: new vscode.Range(line, character, line, character), text: inserted }],
    } as unknown as vscode.TextDocumentChangeEvent);
  edit(0, 0, "# a note\n# another\n"); // two lines above both hunks
  assert.deepEqual(spans(editor, decorations.added), ["3:0-3:3", "10:0-10:16"]);
  assert.deepEqual(spans(editor, decorations.removed), ["3:0-3:0"]);
  edit(5, 5, "\n"); // Enter inside the gap between the hunks: only the second moves
  assert.deepEqual(spans(editor, decorations.added), ["3:0-3:3", "11:0-11:16"]);
  editor.document.isDirty = true;
  decorations.refresh(); // unsaved: the tracked ranges are what matches the text
  assert.deepEqual(spans(editor, decorations.added), ["3:0-3:3", "11:0-11:16"]);
  editor.document.isDirty = false;
  decorations.refresh(); // saved and fetched again: anchored at the daemon's hunks
  assert.deepEqual(spans(editor, decorations.added), ["1:0-1:3", "8:0-8:16"]);
  window.visibleTextEditors = [];
  workspace.textDocuments = [];
});

test("a binary and a big file are reviewed whole: no hunk nodes, CodeLens or decorations, one Accept / Reject", async () => {
  assert.deepEqual([text, binary, big].map(plainDiff), [false, true, true]);
  const tree = reviewNode(run, view);
  assert.deepEqual(
    tree.children!.map((file) => [file.context, file.description, file.children!.length]),
    [
      ["review.file", "modified", 2],
      ["review.file.whole", "binary · whole file · undecided", 0],
      ["review.file.whole", "added · whole file · undecided", 0],
    ],
  );
  const reviews = new Map([["r1", { ...view, files: [text, { ...binary, decision: { action: "reject" as const } }, big] }]]);
  const lenses = new HunkLenses(reviews);
  for (const [file, state] of [[binary, "rejected · "], [big, ""]] as const) {
    const found = lenses.provideCodeLenses({ uri: sideUri("r1", file.path, "proposed"), lineCount: 9000 } as unknown as vscode.TextDocument);
    assert.deepEqual(
      found.map((l) => [l.command?.title, l.command?.command, l.command?.arguments, l.range.start.line]),
      [
        [`${state}Accept file`, "locus.acceptFile", [{ runId: "r1", path: file.path }], 0],
        ["Reject file…", "locus.rejectFile", [{ runId: "r1", path: file.path }], 0],
      ],
    );
  }
  const decorations = new HunkDecorations(reviews);
  const editor = textEditor(sideUri("r1", big.path, "proposed") as never, bigLines);
  decorations.show(editor as unknown as vscode.TextEditor);
  assert.deepEqual(spans(editor, decorations.added), []);
  // A binary's sides are a note, never its bytes decoded as text; a big file's are the daemon's.
  const content = new ReviewContent(async (_run, path) => {
    assert.notEqual(path, HOSTILE, "a binary's bytes are not fetched");
    return { path, base: null, proposed: "the daemon's text\n" };
  }, reviews);
  assert.match(await content.provideTextDocumentContent(sideUri("r1", HOSTILE, "proposed")), /^\(binary file, after the change: not shown as text/);
  assert.equal(await content.provideTextDocumentContent(sideUri("r1", big.path, "proposed")), "the daemon's text\n");
});

test("the run's changes in the multi-file changes view; one diff per file on an older VS Code or if it fails", async () => {
  assert.deepEqual(["1.85.2", "1.86.0", "1.100.1", "2.0.0"].map(hasChangesView), [false, true, true, true]);
  const files: ReviewView = {
    ...view,
    files: [text, { ...text, path: "new.txt", status: "added" }, { ...text, path: "gone.txt", status: "deleted" }],
  };
  const triples = changeTriples("r1", files).map((triple) => triple.map((uri) => uri && String(uri)));
  const side = (path: string, which: "base" | "proposed") => String(sideUri("r1", path, which));
  assert.deepEqual(triples, [
    [side("src/a.py", "proposed"), side("src/a.py", "base"), side("src/a.py", "proposed")],
    [side("new.txt", "proposed"), undefined, side("new.txt", "proposed")],
    [side("gone.txt", "proposed"), side("gone.txt", "base"), undefined],
  ]);
  executed.length = 0;
  assert.equal(await openChanges("r1", "Fix [it](command:x)", files, "1.100.0"), "changes");
  assert.deepEqual(
    executed.map((call) => [call.command, call.args[0]]),
    [["vscode.changes", "Locus review: Fix [it](command:x)"]],
  );
  assert.deepEqual(executed[0]!.args[1], changeTriples("r1", files));
  executed.length = 0;
  assert.equal(await openChanges("r1", "t", files, "1.85.0"), "diff");
  assert.deepEqual(
    executed.map((call) => [call.command, String(call.args[0]), String(call.args[1]), call.args[2]]),
    files.files.map((file) => ["vscode.diff", side(file.path, "base"), side(file.path, "proposed"), `Locus review: ${file.path}`]),
  );
  executed.length = 0;
  failing.add("vscode.changes");
  setVersion("1.100.0");
  assert.equal(await openChanges("r1", "t", files), "diff");
  assert.equal(executed.length, 3);
  failing.delete("vscode.changes");
});
