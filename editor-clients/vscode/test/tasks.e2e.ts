// The extension on the `vscode` mock against the REAL daemon logged in to a REAL cloud, driven
// by tests/editors/test_vscode_tasks.py (LOCUSD, LOCUS_REPO: a checkout whose remote the
// cloud's project lists, LOCUS_OUT: what was seen, for pytest to check in the cloud): the Tasks
// view, Create task, Pull a task (its run starts and asks for an approval, left unanswered),
// Cancel run (which withdraws the question: its prompt closes), Start a local run.
import assert from "node:assert/strict";
import { writeFileSync } from "node:fs";
import { test } from "node:test";
import * as vscode from "vscode";
import { activate } from "../src/extension";
import type { Node } from "../src/reviewModel";
import { env, until } from "./e2e-support";
import { answers, quickPicks, registered, settings, shown, workspace } from "./vscode-mock";

test("the Tasks view, Create task, Pull a task, Cancel run", { timeout: 120_000 }, async () => {
  settings["locus.daemonPath"] = env("LOCUSD");
  workspace.workspaceFolders = [{ uri: vscode.Uri.file(env("LOCUS_REPO")) }];
  const context = { subscriptions: [] as { dispose(): unknown }[] };
  const out: Record<string, unknown> = {};
  activate(context as unknown as vscode.ExtensionContext);
  try {
    const tasks = registered.trees.get("locus.tasks")!;
    const runs = registered.trees.get("locus.runs")!;
    const taskNodes = () => tasks.getChildren() as Node[];
    await until(() => taskNodes().length === 1);
    const [backlog] = taskNodes();
    const item = tasks.getTreeItem(backlog);
    out.backlog = { taskId: backlog!.taskId, label: item.label, description: item.description };

    answers.push("Made in the editor");
    await vscode.commands.executeCommand("locus.createTask");
    await until(() => taskNodes().length === 2);
    const created = taskNodes().find((node) => node.label.endsWith(" Made in the editor"))!;
    assert.equal(created.description, "queued");
    out.created = created.taskId;

    await vscode.commands.executeCommand("locus.pullTask");
    const runNode = () => (runs.getChildren() as Node[]).find((node) => node.taskId === created.taskId);
    await until(() => runNode()?.context === "run.active");
    // The run asks for an approval: the prompt is shown and left open (no scripted answer).
    await until(() => quickPicks.some((pick) => pick.visible));
    const prompt = quickPicks.find((pick) => pick.visible)!;
    out.asked = (prompt.items[0] as { description: string }).description;
    const active = runNode()!;
    await vscode.commands.executeCommand("locus.cancelRun", active);
    await until(() => runNode()?.context === "run.done");
    // The cancel withdrew the question: the daemon's word closed the prompt.
    await until(() => !prompt.visible);
    out.run = { runId: active.runId, description: runNode()!.description };
    await until(() => taskNodes().find((node) => node.taskId === created.taskId)?.description === "cancelled");

    // A local run from the editor, as `locus run "…"` (the workspace's one folder).
    answers.push("Add a docstring to mean()");
    await vscode.commands.executeCommand("locus.startRun");
    const local = () => (runs.getChildren() as Node[]).find((node) => node.label === "Add a docstring to mean()");
    // Its agent asks a question (the run needs input): the Runs view follows it live, and the
    // run is no longer one to cancel (the daemon would refuse: it waits on the person).
    await until(() => local()?.description?.endsWith(" · needs_input") === true, "the question");
    out.local = { runId: local()!.runId, taskId: local()!.taskId ?? null, context: local()!.context };
    out.errors = shown.filter((s) => s.kind === "error").map((s) => s.message);
  } finally {
    writeFileSync(env("LOCUS_OUT"), JSON.stringify(out));
    context.subscriptions.forEach((item) => item.dispose());
  }
});
