// A small stand-in for the `vscode` API (esbuild aliases `vscode` to it for the UI tests): just
// what the UI modules call, recording what they show and answering prompts from a script.
export const shown: { kind: string; message: string; options?: unknown; items: string[] }[] = [];
/** What the next prompts answer (a modal's button, an input box's text; undefined: dismissed). */
export const answers: (string | undefined)[] = [];

export class EventEmitter<T> {
  private listeners: ((value: T) => void)[] = [];
  event = (listener: (value: T) => void) => {
    this.listeners.push(listener);
    return { dispose: () => undefined };
  };
  fire(value: T): void {
    this.listeners.forEach((f) => f(value));
  }
}

export enum TreeItemCollapsibleState {
  None = 0,
  Collapsed = 1,
  Expanded = 2,
}
export enum StatusBarAlignment {
  Left = 1,
  Right = 2,
}

export class TreeItem {
  id?: string;
  description?: string;
  tooltip?: unknown;
  contextValue?: string;
  command?: { command: string; title: string; arguments?: unknown[] };
  constructor(
    public label: unknown,
    public collapsibleState?: TreeItemCollapsibleState,
  ) {}
}

export class Range {
  constructor(
    public startLine: number,
    public startCharacter: number,
    public endLine: number,
    public endCharacter: number,
  ) {}
}

export class CodeLens {
  constructor(
    public range: Range,
    public command?: { title: string; command: string; arguments?: unknown[] },
  ) {}
}

export class Uri {
  constructor(
    public scheme: string,
    public path: string,
    public query: string,
  ) {}
  static from(parts: { scheme: string; path?: string; query?: string }): Uri {
    return new Uri(parts.scheme, parts.path ?? "", parts.query ?? "");
  }
}

export const statusItems: { text: string; tooltip: unknown; visible: boolean }[] = [];

function ask(kind: string, message: string, options: unknown, items: string[]): Promise<string | undefined> {
  shown.push({ kind, message, options, items });
  return Promise.resolve(answers.shift());
}

export const window = {
  createStatusBarItem() {
    const item = { text: "", tooltip: undefined as unknown, command: undefined as unknown, visible: false, show() { item.visible = true; }, dispose() {} };
    statusItems.push(item);
    return item;
  },
  showWarningMessage: (message: string, ...rest: unknown[]) => {
    const options = typeof rest[0] === "object" ? rest.shift() : undefined;
    return ask("warning", message, options, rest as string[]);
  },
  showInformationMessage: (message: string, ...items: string[]) => ask("info", message, undefined, items),
  showErrorMessage: (message: string) => ask("error", message, undefined, []),
  showInputBox: (options: { title?: string; value?: string }) => ask("input", options.title ?? "", options, []),
  showTextDocument: () => Promise.resolve(undefined),
};

export const workspace = {
  openTextDocument: (options: { content: string }) => Promise.resolve({ getText: () => options.content }),
  getConfiguration: () => ({ get: () => undefined }),
};
