/**
 * The extension's wiring: one reconnecting daemon client, the status bar, the Locus view, the
 * review documents and commands, approvals. Everything it shows comes from the daemon; nothing
 * the daemon (or the agent behind it) names is ever run as a command.
 */
import * as vscode from "vscode";
import { askApproval } from "./approvals";
import { diffTitle, openChanges } from "./changesView";
import { HunkDecorations, inWorktree } from "./decorations";
import { type ConnectionState, type LocusClient, Reconnector, type Run, type RunEvent } from "./client";
import { HunkLenses, ReviewContent, type Reviews, SCHEME, sideUri } from "./reviewDocs";
import { type HunkTarget, ReviewActions } from "./reviewActions";
import { awaitingReview, logLine, type Node, oneLine, reviewNode, runNodes, taskNodes, taskPage } from "./reviewModel";
import { countRuns, DisconnectNotice, StatusBar } from "./status";
import { NodeTree } from "./views";

export function activate(context: vscode.ExtensionContext): void {
  const locus = new Extension();
  context.subscriptions.push(locus);
  locus.register(context);
  void locus.reconnector.start();
}

export function deactivate(): void {}

class Extension implements vscode.Disposable {
  readonly status = new StatusBar();
  readonly tasks = new NodeTree();
  readonly runs = new NodeTree();
  readonly reviewsTree = new NodeTree();
  readonly reviews: Reviews = new Map();
  readonly lenses = new HunkLenses(this.reviews);
  readonly decorations = new HunkDecorations(this.reviews, (document) => this.worktreeFile(document));
  readonly content: ReviewContent;
  readonly actions: ReviewActions;
  readonly reconnector: Reconnector;
  private runList: Run[] = [];
  private readonly needsYou = new Set<string>();
  private readonly logs = new Map<string, vscode.OutputChannel>();
  private readonly working = new Set<string | number>();
  private readonly notice = new DisconnectNotice();
  private connected = false;
  private lastError: string | undefined;

  constructor() {
    const client = () => this.reconnector.client;
    this.content = new ReviewContent((runId, path) => this.need().content(runId, path), this.reviews);
    this.actions = new ReviewActions(client, this.reviews, () => void this.refresh());
    const settings = vscode.workspace.getConfiguration("locus");
    this.reconnector = new Reconnector(
      {
        daemonPath: settings.get<string>("daemonPath") || "locusd",
        socket: settings.get<string>("socket") || undefined,
        clientName: "vscode",
      },
      (state) => this.onState(state),
    );
  }

  private need(): LocusClient {
    const client = this.reconnector.client;
    if (!client) throw new Error("Locus: not connected to the daemon");
    return client;
  }

  register(context: vscode.ExtensionContext): void {
    const command = (name: string, run: (...args: never[]) => unknown) =>
      context.subscriptions.push(vscode.commands.registerCommand(name, (...args: never[]) => this.guard(() => run(...args))));
    context.subscriptions.push(
      vscode.window.registerTreeDataProvider("locus.tasks", this.tasks),
      vscode.window.registerTreeDataProvider("locus.runs", this.runs),
      vscode.window.registerTreeDataProvider("locus.reviews", this.reviewsTree),
      vscode.workspace.registerTextDocumentContentProvider(SCHEME, this.content),
      vscode.languages.registerCodeLensProvider({ scheme: SCHEME }, this.lenses),
      this.decorations,
      vscode.workspace.onDidChangeTextDocument((event) => this.decorations.changed(event)),
      vscode.window.onDidChangeVisibleTextEditors((editors) => editors.forEach((editor) => this.decorations.show(editor))),
    );
    command("locus.refresh", () => this.refresh());
    command("locus.reconnect", () => this.reconnector.start());
    command("locus.openDiff", (node: Node) => this.openDiff(node));
    command("locus.acceptHunk", (target: HunkTarget) => this.actions.accept(target));
    command("locus.rejectHunk", (target: HunkTarget) => this.actions.reject(target));
    command("locus.editHunk", (target: HunkTarget) => this.actions.edit(target));
    command("locus.acceptFile", (target: HunkTarget) => this.actions.accept({ runId: target.runId, path: target.path }));
    command("locus.rejectFile", (target: HunkTarget) => this.actions.reject({ runId: target.runId, path: target.path }));
    command("locus.openChanges", (node: Node) => this.openChanges(this.runOf(node)));
    command("locus.acceptAll", (node: Node) => this.actions.all(this.runOf(node), "accept"));
    command("locus.rejectAll", (node: Node) => this.actions.all(this.runOf(node), "reject"));
    command("locus.commit", async (node: Node) => {
      const commit = await this.actions.commit(this.runOf(node));
      if (commit) void vscode.window.showInformationMessage(`Locus: committed ${commit.slice(0, 12)}`);
    });
    command("locus.sendBack", (node: Node) => this.actions.sendBack(this.runOf(node)));
    command("locus.cancelRun", (node: Node) => this.need().cancelRun({ runId: this.runOf(node) }));
    command("locus.createTask", () => this.createTask());
    command("locus.openTask", async (node: Node) => {
      if (node?.taskId === undefined) throw new Error("Locus: pick a task (or a run of a cloud task)");
      const auth = await this.need().request("locus/auth/status", {});
      await vscode.env.openExternal(vscode.Uri.parse(taskPage(auth.cloudUrl, node.taskId)));
    });
    command("locus.showLog", (node: Node) => this.showLog(this.runOf(node)));
    command("locus.pullTask", () => this.need().pullTask({ repos: this.folders() }));
    command("locus.startRun", () => this.startRun());
  }

  private async guard(run: () => unknown): Promise<void> {
    try {
      await run();
      await this.refresh();
    } catch (error) {
      void vscode.window.showErrorMessage(error instanceof Error ? error.message : String(error));
    }
  }

  private runOf(node: Node | undefined): string {
    if (node?.runId) return node.runId;
    const [only] = awaitingReview(this.runList);
    if (!only) throw new Error("Locus: pick a run in the Reviews view");
    return only.runId;
  }

  private folders(): string[] {
    return (vscode.workspace.workspaceFolders ?? []).map((folder) => folder.uri.fsPath);
  }

  private onState(state: ConnectionState): void {
    const message = this.notice.next(state);
    if (message) void vscode.window.showWarningMessage(message);
    if (state.kind === "connected") {
      this.connected = true;
      this.lastError = undefined;
      this.attach(state.client);
      void this.refresh();
    } else if (state.kind === "disconnected" || state.kind === "stopped") {
      this.connected = false;
      this.lastError = state.error;
      this.paint();
    }
  }

  private attach(client: LocusClient): void {
    client.onApproval((approval) => {
      const run = this.runList.find((r) => r.runId === approval.request.runId);
      return askApproval(approval, run?.title ?? approval.request.runId);
    });
    client.onNeedsYou((needs) => {
      this.needsYou.add(`${needs.runId}:${needs.kind}`);
      void this.refresh();
    });
    client.onRunStarted((run) => void client.subscribe(run.runId).then(() => this.refresh()));
    client.onRunEvent((event) => {
      if (event.kind === "state" || event.kind === "completed") void this.refresh();
    });
    client.onProgress(({ token, value }) => {
      const kind = (value as { kind?: string }).kind;
      if (kind === "end") this.working.delete(token);
      else this.working.add(token);
      this.paint();
    });
  }

  async refresh(): Promise<void> {
    const client = this.reconnector.client;
    if (!client) return this.paint();
    this.runList = (await client.runs()).runs;
    for (const run of this.runList) {
      // Approvals go to the run's subscribers: watch every run that may still ask.
      if (run.state === "starting" || run.state === "running") void client.subscribe(run.runId);
    }
    for (const key of [...this.needsYou]) {
      const run = this.runList.find((r) => key.startsWith(`${r.runId}:`));
      if (!run || !["needs_input", "awaiting_review", "running"].includes(run.state)) this.needsYou.delete(key);
    }
    this.runs.set(runNodes(this.runList));
    const waiting = awaitingReview(this.runList);
    const nodes: Node[] = [];
    for (const run of waiting) {
      const view = await client.review(run.runId);
      this.reviews.set(run.runId, view);
      nodes.push(reviewNode(run, view));
    }
    this.reviewsTree.set(nodes);
    this.lenses.refresh();
    this.decorations.refresh();
    await this.loadTasks(client);
    this.paint();
  }

  private async loadTasks(client: LocusClient): Promise<void> {
    try {
      const projects = await client.request("locus/projects/resolve", { repos: this.folders() });
      const [project] = projects.projects;
      this.tasks.set(project ? taskNodes((await client.tasks({ projectId: project.id })).tasks) : []);
    } catch {
      this.tasks.set([]); // not logged in, or no project for this checkout: the view stays empty
    }
  }

  private paint(): void {
    this.status.show({
      connected: this.connected,
      ...countRuns(this.runList),
      needsYou: this.needsYou.size,
      working: this.working.size > 0,
      error: this.lastError,
    });
  }

  private async openDiff(node: Node): Promise<void> {
    if (!node.runId || node.path === undefined) return;
    const base = sideUri(node.runId, node.path, "base");
    const proposed = sideUri(node.runId, node.path, "proposed");
    await vscode.commands.executeCommand("vscode.diff", base, proposed, diffTitle(node.path));
  }

  private async openChanges(runId: string): Promise<void> {
    const view = this.reviews.get(runId) ?? (await this.actions.reload(runId));
    const run = this.runList.find((r) => r.runId === runId);
    await openChanges(runId, oneLine(run?.title ?? runId), view);
  }

  /** A file of a run's worktree that is under review: its decorations follow the person's edits. */
  private worktreeFile(document: vscode.TextDocument): { runId: string; path: string } | undefined {
    if (document.uri.scheme !== "file") return undefined;
    for (const run of awaitingReview(this.runList)) {
      const path = run.worktree ? inWorktree(run.worktree, document.uri.fsPath) : undefined;
      if (path !== undefined) return { runId: run.runId, path };
    }
    return undefined;
  }

  /** The run's events so far, then live ones, in an output channel (plain text). */
  private async showLog(runId: string): Promise<void> {
    const client = this.need();
    const channel = this.logs.get(runId) ?? vscode.window.createOutputChannel(`Locus log ${runId.slice(0, 8)}`);
    if (!this.logs.has(runId)) {
      this.logs.set(runId, channel);
      channel.clear();
      let last = 0;
      const append = (event: RunEvent) => {
        if (event.runId !== runId || event.seq <= last) return;
        last = event.seq;
        channel.appendLine(logLine(event));
      };
      client.onRunEvent(append);
      (await client.subscribe(runId)).events.forEach(append);
    }
    channel.show(true);
  }

  private async createTask(): Promise<void> {
    const client = this.need();
    const [project] = (await client.request("locus/projects/resolve", { repos: this.folders() })).projects;
    if (!project) throw new Error("Locus: no project lists this checkout's remote (see locus projects)");
    const title = await vscode.window.showInputBox({ title: `New task in ${project.name}`, prompt: "Title" });
    if (!title) return;
    await client.createTask({ projectId: project.id, title });
  }

  /** A local run, as `locus run "…"`: in the workspace folder (asked when there are several). */
  private async startRun(): Promise<void> {
    const client = this.need();
    const folders = this.folders();
    if (folders.length === 0) throw new Error("Locus: open a folder (a git checkout) to run the agent in");
    const repo = folders.length === 1 ? folders[0] : await vscode.window.showQuickPick(folders, { title: "Run the agent in" });
    if (!repo) return;
    const task = await vscode.window.showInputBox({ title: "Start a local run", prompt: "What should the agent do?" });
    if (!task) return;
    const run = await client.startRun({ repo, task });
    await client.subscribe(run.runId); // its approvals are asked here
  }

  dispose(): void {
    void this.reconnector.stop();
    this.status.dispose();
    this.logs.forEach((channel) => channel.dispose());
  }
}
