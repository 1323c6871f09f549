/**
 * What the Locus views show, as plain data built from the daemon's answers (no `vscode` API, so
 * the Node tests check the same trees the extension renders). Every text here may come from the
 * agent (titles, paths, hunk lines): it is kept as a plain string and shown as such.
 */
import type { FileView, HunkView, ReviewView, Run, Task } from "./generated/protocol";

export interface Node {
  /** Stable id: run id, then path, then hunk id. */
  id: string;
  label: string;
  description?: string;
  /** `viewItem` for menus: run.active (cancellable), run.waiting, run.done, review.run, review.file(.whole), review.hunk, task. */
  context: string;
  children?: Node[];
  runId?: string;
  taskId?: number;
  path?: string;
  hunkId?: string;
}

/** The states the daemon can cancel (`locus/runs/cancel`); a question or a review waits on you. */
const CANCELLABLE = new Set(["starting", "running"]);
const WAITING = new Set(["needs_input", "awaiting_review", "committing"]);

/** Control characters (newlines, escapes) would let a name pose as several lines: shown escaped. */
export function oneLine(text: string): string {
  return text.replace(/[\u0000-\u001f\u007f-\u009f\u2028\u2029]/g, (c) => `\\u${c.charCodeAt(0).toString(16).padStart(4, "0")}`);
}

export function taskNodes(tasks: Task[]): Node[] {
  return tasks.map((task) => ({
    id: `task:${task.id}`,
    label: `#${task.id} ${oneLine(task.title)}`,
    description: task.status,
    context: "task",
    taskId: task.id,
  }));
}

export function runNodes(runs: Run[]): Node[] {
  return runs.map((run) => ({
    id: `run:${run.runId}`,
    label: oneLine(run.title),
    description: `${run.shortId} · ${run.state}`,
    context: CANCELLABLE.has(run.state) ? "run.active" : WAITING.has(run.state) ? "run.waiting" : "run.done",
    runId: run.runId,
    taskId: run.taskId ?? undefined,
  }));
}

export function awaitingReview(runs: Run[]): Run[] {
  return runs.filter((run) => run.state === "awaiting_review");
}

function decided(hunk: HunkView | FileView): string {
  return hunk.decision ? hunk.decision.action : "undecided";
}

export function hunkCounts(hunk: HunkView): { added: number; removed: number } {
  return {
    added: hunk.lines.filter((line) => line.startsWith("+")).length,
    removed: hunk.lines.filter((line) => line.startsWith("-")).length,
  };
}

/** Above this many diff lines (or hunks) a file is reviewed whole, as a plain diff. */
export const PLAIN_DIFF_LINES = 5000;
export const PLAIN_DIFF_HUNKS = 200;

/**
 * Binaries (which have no text hunks) and big files degrade to a plain diff: no CodeLens or
 * decoration per hunk, and one Accept / Reject for the whole file.
 */
export function plainDiff(file: FileView): boolean {
  const lines = file.hunks.reduce((sum, hunk) => sum + hunk.lines.length, 0);
  return file.binary || file.hunks.length > PLAIN_DIFF_HUNKS || lines > PLAIN_DIFF_LINES;
}

/** run → file → hunk, with the decision so far on each (a plain-diff file has no hunk nodes). */
export function reviewNode(run: Run, view: ReviewView): Node {
  return {
    id: `review:${run.runId}`,
    label: oneLine(run.title),
    description: `${view.undecided} undecided`,
    context: "review.run",
    runId: run.runId,
    children: view.files.map((file) => ({
      id: `review:${run.runId}:${file.path}`,
      label: oneLine(file.path),
      description: plainDiff(file)
        ? `${file.status} · whole file · ${decided(file)}`
        : file.structural
          ? `${file.status} · ${decided(file)}`
          : file.status,
      context: plainDiff(file) ? "review.file.whole" : "review.file",
      runId: run.runId,
      path: file.path,
      children: (plainDiff(file) ? [] : file.hunks).map((hunk) => {
        const { added, removed } = hunkCounts(hunk);
        return {
          id: `review:${run.runId}:${file.path}:${hunk.id}`,
          label: oneLine(hunk.header),
          description: `+${added} -${removed} · ${decided(hunk)}`,
          context: "review.hunk",
          runId: run.runId,
          path: file.path,
          hunkId: hunk.id,
        };
      }),
    })),
  };
}

/** Where a hunk starts on the proposed side (0-based line), from its `@@ -a,b +c,d @@` header. */
export function proposedStart(hunk: HunkView): number {
  const match = /^@@ -\d+(?:,\d+)? \+(\d+)(?:,\d+)? @@/.exec(hunk.header);
  return match ? Math.max(0, Number(match[1]) - 1) : 0;
}

/** The proposed side's line (0-based) of the hunk's first change: where its actions belong,
 * past the unchanged lines of context that open the hunk. */
export function firstChange(hunk: HunkView): number {
  const context = hunk.lines.findIndex((line) => !line.startsWith(" "));
  return proposedStart(hunk) + (context < 0 ? 0 : context);
}

/** The hunk's new side (what an edit starts from and sends back). */
export function newSide(hunk: HunkView): string[] {
  return hunk.lines.filter((line) => !line.startsWith("-")).map((line) => line.slice(1));
}

/** The text a person edits for edit-then-accept: the hunk's new side, one line a line. */
export function editText(hunk: HunkView): string {
  return newSide(hunk).map((line) => `${line}\n`).join("");
}

/** The edited text back as the decision's lines (one per line, no line breaks in them). */
export function editedLines(text: string): string[] {
  const lines = text.split("\n");
  if (lines[lines.length - 1] === "") lines.pop();
  return lines;
}

/** A run's event as one line of its log (the agent's text kept as text). */
export function logLine(event: { seq: number; kind: string; text?: string }): string {
  return `${String(event.seq).padStart(4)} ${event.kind.padEnd(9)} ${oneLine(event.text ?? "")}`;
}

/** The dashboard's page of a task, on the cloud the daemon is logged in to (http/https only). */
export function taskPage(cloudUrl: string | null | undefined, taskId: number): string {
  if (!cloudUrl) throw new Error("Locus: the daemon is not logged in to a cloud (run locus login)");
  const url = new URL(`/tasks/${taskId}`, cloudUrl);
  if (url.protocol !== "http:" && url.protocol !== "https:") throw new Error(`Locus: the cloud URL ${cloudUrl} is not http(s)`);
  return url.toString();
}
