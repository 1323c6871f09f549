/**
 * The Locus view's trees (tasks, runs, reviews waiting) as TreeDataProviders over the plain
 * nodes of reviewModel.ts. Labels, descriptions and tooltips are plain strings: VS Code shows
 * them as text, so an agent's file name or title cannot become markup or a command link.
 */
import * as vscode from "vscode";
import type { Node } from "./reviewModel";

export class NodeTree implements vscode.TreeDataProvider<Node> {
  private readonly changed = new vscode.EventEmitter<Node | undefined>();
  readonly onDidChangeTreeData = this.changed.event;
  private roots: Node[] = [];

  set(roots: Node[]): void {
    this.roots = roots;
    this.changed.fire(undefined);
  }

  getChildren(node?: Node): Node[] {
    return node ? (node.children ?? []) : this.roots;
  }

  getTreeItem(node: Node): vscode.TreeItem {
    const state = node.children?.length
      ? node.context === "review.file"
        ? vscode.TreeItemCollapsibleState.Collapsed
        : vscode.TreeItemCollapsibleState.Expanded
      : vscode.TreeItemCollapsibleState.None;
    const item = new vscode.TreeItem(node.label, state);
    item.id = node.id;
    item.description = node.description;
    item.tooltip = node.description ? `${node.label}\n${node.description}` : node.label;
    item.contextValue = node.context;
    if (node.context.startsWith("review.file") || node.context === "review.hunk") {
      // Our own command with our own arguments: nothing the daemon names is run.
      item.command = { command: "locus.openDiff", title: "Open diff", arguments: [node] };
    }
    return item;
  }
}
