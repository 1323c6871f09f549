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

/** The editor's version (`vscode.version`); tests set it to check what an older one gets. */
export let version = "1.100.0";
export function setVersion(value: string): void {
  version = value;
}

export class ThemeColor {
  constructor(public id: string) {}
}

export class Position {
  constructor(
    public line: number,
    public character: number,
  ) {}
}

export class Range {
  readonly start: Position;
  readonly end: Position;
  constructor(
    public startLine: number,
    public startCharacter: number,
    public endLine: number,
    public endCharacter: number,
  ) {
    this.start = new Position(startLine, startCharacter);
    this.end = new Position(endLine, endCharacter);
  }
}

export class CodeLens {
  constructor(
    public range: Range,
    public command?: { title: string; command: string; arguments?: unknown[] },
  ) {}
}

const disposable = { dispose: () => undefined };
/** Settings the extension reads (`locus.daemonPath`, …). */
export const settings: Record<string, unknown> = {};
export const registered = {
  commands: new Map<string, (...args: unknown[]) => unknown>(),
  trees: new Map<string, { getChildren(node?: unknown): unknown[]; getTreeItem(node: unknown): TreeItem }>(),
  content: new Map<string, { provideTextDocumentContent(uri: Uri): Promise<string> }>(),
  lenses: [] as { provideCodeLenses(document: unknown): CodeLens[] }[],
};
/** Commands run that the extension did not register (vscode.diff, …), and external links. */
export const executed: { command: string; args: unknown[] }[] = [];
export const outputs = new Map<string, string[]>();
/** Commands that fail when run (as a command this VS Code lacks would). */
export const failing = new Set<string>();

export const commands = {
  registerCommand(name: string, run: (...args: unknown[]) => unknown) {
    registered.commands.set(name, run);
    return disposable;
  },
  executeCommand(name: string, ...args: unknown[]): Promise<unknown> {
    const run = registered.commands.get(name);
    if (run) return Promise.resolve(run(...args));
    if (failing.has(name)) return Promise.reject(new Error(`command '${name}' not found`));
    executed.push({ command: name, args });
    return Promise.resolve(undefined);
  },
};

export const languages = {
  registerCodeLensProvider(_selector: unknown, provider: { provideCodeLenses(document: unknown): CodeLens[] }) {
    registered.lenses.push(provider);
    return disposable;
  },
};

export const env = {
  openExternal(uri: Uri): Promise<boolean> {
    executed.push({ command: "openExternal", args: [uri] });
    return Promise.resolve(true);
  },
};

export class Uri {
  constructor(
    public scheme: string,
    public path: string,
    public query: string,
  ) {}
  static parse(text: string): Uri {
    const url = new URL(text);
    return new Uri(url.protocol.slice(0, -1), url.pathname, url.search.slice(1));
  }
  static from(parts: { scheme: string; path?: string; query?: string }): Uri {
    return new Uri(parts.scheme, parts.path ?? "", parts.query ?? "");
  }
  static file(path: string): Uri {
    return new Uri("file", path, "");
  }
  get fsPath(): string {
    return this.path;
  }
  toString(): string {
    return `${this.scheme}:${this.path}${this.query ? `?${this.query}` : ""}`;
  }
}

/** Listeners the extension registered for editor events (fire them to play an edit). */
export const editorEvents = {
  changed: new EventEmitter<{ document: unknown; contentChanges: unknown[] }>(),
  visible: new EventEmitter<unknown[]>(),
};

/** A text editor on `lines`; `decorations` records what was set, by decoration type. */
export function textEditor(uri: Uri, lines: string[]) {
  const document = { uri, isDirty: false, lineCount: lines.length, lineAt: (n: number) => ({ text: lines[n] ?? "" }), getText: () => lines.join("\n") };
  const decorations = new Map<unknown, Range[]>();
  return { document, decorations, setDecorations: (type: unknown, ranges: Range[]) => decorations.set(type, ranges) };
}

export const statusItems: { text: string; tooltip: unknown; visible: boolean }[] = [];

function ask(kind: string, message: string, options: unknown, items: string[]): Promise<string | undefined> {
  shown.push({ kind, message, options, items });
  return Promise.resolve(answers.shift());
}

/** QuickPicks the extension created, as shown: `visible` turns false when one is hidden. */
export const quickPicks: { title?: string; placeholder?: string; labels: string[]; items: unknown[]; ignoreFocusOut: boolean; visible: boolean }[] = [];

/** A QuickPick answered from `answers` when shown: a label picks that item, `undefined` is
 * Escape, and an empty script leaves it open (for the code under test to close). */
function createQuickPick() {
  const accept = new EventEmitter<void>();
  const hide = new EventEmitter<void>();
  const pick = {
    title: undefined as string | undefined,
    placeholder: undefined as string | undefined,
    items: [] as { label: string }[],
    selectedItems: [] as { label: string }[],
    ignoreFocusOut: false,
    matchOnDescription: true,
    onDidAccept: accept.event,
    onDidHide: hide.event,
    record: undefined as (typeof quickPicks)[number] | undefined,
    show() {
      const record = { title: pick.title, placeholder: pick.placeholder, labels: pick.items.map((i) => i.label), items: pick.items, ignoreFocusOut: pick.ignoreFocusOut, visible: true };
      pick.record = record;
      quickPicks.push(record);
      shown.push({ kind: "quickPick", message: pick.title ?? "", options: { placeholder: pick.placeholder }, items: record.labels });
      if (answers.length === 0) return;
      const answer = answers.shift();
      setImmediate(() => {
        if (answer === undefined) return pick.hide();
        pick.selectedItems = pick.items.filter((item) => item.label === answer);
        accept.fire();
      });
    },
    hide() {
      if (!pick.record?.visible) return;
      pick.record.visible = false;
      hide.fire();
    },
    dispose: () => undefined,
  };
  return pick;
}

export const window = {
  createQuickPick,
  visibleTextEditors: [] as unknown[],
  onDidChangeVisibleTextEditors: editorEvents.visible.event,
  createTextEditorDecorationType: (options: unknown) => ({ options, dispose: () => undefined }),
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
  showQuickPick: (items: string[], options: { title?: string }) => ask("quickPickItems", options.title ?? "", options, items),
  showInputBox: (options: { title?: string; value?: string }) => ask("input", options.title ?? "", options, []),
  showTextDocument: () => Promise.resolve(undefined),
  registerTreeDataProvider(id: string, provider: { getChildren(node?: unknown): unknown[]; getTreeItem(node: unknown): TreeItem }) {
    registered.trees.set(id, provider);
    return disposable;
  },
  createOutputChannel(name: string) {
    const lines: string[] = [];
    outputs.set(name, lines);
    return { appendLine: (line: string) => lines.push(line), clear: () => lines.splice(0), show: () => undefined, dispose: () => undefined };
  },
};

export const workspace = {
  textDocuments: [] as unknown[],
  onDidChangeTextDocument: editorEvents.changed.event,
  workspaceFolders: [] as unknown[],
  openTextDocument: (options: { content: string }) => Promise.resolve({ getText: () => options.content }),
  getConfiguration: (section: string) => ({ get: (key: string) => settings[`${section}.${key}`] }),
  registerTextDocumentContentProvider(scheme: string, provider: { provideTextDocumentContent(uri: Uri): Promise<string> }) {
    registered.content.set(scheme, provider);
    return disposable;
  },
};
