/**
 * The status bar item: connected or not, runs in progress, reviews waiting, needs you. Its text
 * renders `$(icon)` syntax, so it holds only numbers and fixed words, never a run's title.
 */
import * as vscode from "vscode";
import type { Run } from "./generated/protocol";

export interface StatusCounts {
  connected: boolean;
  running: number;
  reviews: number;
  needsYou: number;
  working: boolean;
  error?: string;
}

const RUNNING = new Set(["starting", "running", "committing"]);

export function countRuns(runs: Run[]): Pick<StatusCounts, "running" | "reviews"> {
  return {
    running: runs.filter((run) => RUNNING.has(run.state)).length,
    reviews: runs.filter((run) => run.state === "awaiting_review").length,
  };
}

export function statusText(counts: StatusCounts): { text: string; tooltip: string } {
  if (!counts.connected) {
    return { text: "$(debug-disconnect) Locus", tooltip: `Locus: not connected${counts.error ? ` (${counts.error})` : ""}` };
  }
  const parts = [`${counts.working ? "$(sync~spin)" : "$(pulse)"} Locus`];
  if (counts.running) parts.push(`${counts.running} running`);
  if (counts.reviews) parts.push(`${counts.reviews} to review`);
  if (counts.needsYou) parts.push(`$(bell) ${counts.needsYou} need you`);
  return {
    text: parts.join(" · "),
    tooltip: `Locus: connected; ${counts.running} running, ${counts.reviews} awaiting review, ${counts.needsYou} need you`,
  };
}

/**
 * At most one notification while the daemon is away: the first failure is said, the retries
 * after it are not, until a connection succeeds again.
 */
export class DisconnectNotice {
  private said = false;

  /** The message to show for this state, if any. */
  next(state: { kind: string; error?: string }): string | undefined {
    if (state.kind === "connected") {
      this.said = false;
      return undefined;
    }
    if (!state.error || this.said) return undefined;
    this.said = true;
    return `Locus: ${state.error}`;
  }
}

export class StatusBar implements vscode.Disposable {
  readonly item = vscode.window.createStatusBarItem(vscode.StatusBarAlignment.Left, 50);

  constructor() {
    this.item.command = "workbench.view.extension.locus";
    this.show({ connected: false, running: 0, reviews: 0, needsYou: 0, working: false });
    this.item.show();
  }

  show(counts: StatusCounts): void {
    const { text, tooltip } = statusText(counts);
    this.item.text = text;
    this.item.tooltip = tooltip; // a plain string: never markdown
  }

  dispose(): void {
    this.item.dispose();
  }
}
