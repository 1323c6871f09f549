/**
 * The Locus protocol client: JSON-RPC over LSP framing (vscode-jsonrpc) to the daemon, through
 * `locusd --stdio` or the daemon's socket. Independent of the `vscode` API so that it runs (and
 * is tested) under plain Node against the real daemon. Thin: every decision is the daemon's.
 */
import { spawn, type ChildProcess } from "node:child_process";
import { statSync } from "node:fs";
import { createConnection } from "node:net";
import { dirname } from "node:path";
import {
  CancellationToken,
  createMessageConnection,
  type MessageConnection,
  ResponseError,
  SocketMessageReader,
  SocketMessageWriter,
  StreamMessageReader,
  StreamMessageWriter,
} from "vscode-jsonrpc/node";
import {
  type ApprovalAnswer,
  type ApprovalRequest,
  type ApprovalResolved,
  type DecisionIn,
  type LocusCapabilities,
  type NeedsYou,
  PROTOCOL_VERSION,
  type Protocol,
  type ReviewView,
  type Run,
  type RunEvent,
} from "./generated/protocol";

export * from "./generated/protocol";

type Methods = Protocol["methods"];
export type MethodName = keyof Methods;
export type ParamsOf<M extends MethodName> = Methods[M]["params"];
export type ResultOf<M extends MethodName> = Methods[M] extends { result: infer R } ? R : void;
export type ApprovalDecision = ApprovalAnswer["decision"];

/** Error codes the client branches on (docs/protocol.md, Errors). */
export const Codes = { reviewStale: -32024, unsupportedProtocol: -32026, requestCancelled: -32800 } as const;

export interface ConnectOptions {
  /** `locusd` to run with `--stdio` (it starts the daemon if none runs). */
  daemonPath?: string;
  /** Connect to this socket instead (checked as the daemon's own clients check it). */
  socket?: string;
  env?: NodeJS.ProcessEnv;
  clientName?: string;
  clientVersion?: string;
  /** Only for tests: claim another protocol version. */
  protocolVersion?: string;
}

/** A connection problem said in words for people (the field, and the fix). */
export class LocusConnectError extends Error {}

/** The daemon refused our protocol version (or we refused its). */
export class ProtocolMismatch extends LocusConnectError {}

interface Transport {
  connection: MessageConnection;
  closed: Promise<void>;
  dispose(): void;
}

/**
 * The socket's directory must be the user's own with no group/other access, as the daemon and
 * its CLI require (docs/protocol.md, Connecting): in a shared temp dir another user could have
 * made it to intercept the socket.
 */
export function checkSocketPath(socket: string): void {
  const uid = process.getuid?.();
  if (uid === undefined) return;
  const dir = statSync(dirname(socket), { throwIfNoEntry: false });
  if (!dir) throw new LocusConnectError(`locus.socket: ${dirname(socket)} does not exist; is the daemon running (locusd serve)?`);
  if (!dir.isDirectory() || dir.uid !== uid || (dir.mode & 0o077) !== 0) {
    throw new LocusConnectError(
      `locus.socket: ${dirname(socket)} must be a directory of yours with mode 0700 (another user could intercept the socket); fix it or leave locus.socket empty`,
    );
  }
  const file = statSync(socket, { throwIfNoEntry: false });
  if (file && file.uid !== uid) {
    throw new LocusConnectError(`locus.socket: ${socket} belongs to another user; refusing to connect`);
  }
}

function openSocket(path: string): Promise<Transport> {
  checkSocketPath(path);
  return new Promise((resolve, reject) => {
    const socket = createConnection(path);
    socket.once("error", (error) =>
      reject(new LocusConnectError(`locus.socket: cannot connect to ${path} (${error.message}); start the daemon or fix the setting`)),
    );
    socket.once("connect", () => {
      const connection = createMessageConnection(new SocketMessageReader(socket), new SocketMessageWriter(socket));
      const closed = new Promise<void>((done) => socket.once("close", () => done()));
      resolve({ connection, closed, dispose: () => socket.destroy() });
    });
  });
}

function openStdio(daemonPath: string, env: NodeJS.ProcessEnv | undefined): Promise<Transport> {
  return new Promise((resolve, reject) => {
    let child: ChildProcess;
    try {
      child = spawn(daemonPath, ["--stdio"], { env: env ?? process.env, stdio: ["pipe", "pipe", "pipe"] });
    } catch (error) {
      reject(new LocusConnectError(`locus.daemonPath: cannot run ${daemonPath} (${String(error)})`));
      return;
    }
    let stderr = "";
    child.stderr?.on("data", (chunk: Buffer) => (stderr = (stderr + chunk.toString()).slice(-2000)));
    const closed = new Promise<void>((done) => child.once("close", () => done()));
    child.once("error", (error) =>
      reject(new LocusConnectError(`locus.daemonPath: cannot run ${daemonPath} (${error.message}); install Locus or set the full path`)),
    );
    child.once("spawn", () => {
      const connection = createMessageConnection(new StreamMessageReader(child.stdout!), new StreamMessageWriter(child.stdin!));
      resolve({ connection, closed, dispose: () => child.kill() });
    });
    child.once("exit", (code) => {
      if (code) reject(new LocusConnectError(`${daemonPath} --stdio exited with ${code}: ${stderr.trim()}`));
    });
  });
}

export interface PendingApproval {
  request: ApprovalRequest;
  /** Settled: answered here, answered by another client, or withdrawn by the daemon. */
  settled: Promise<void>;
}

/** Asks a person; `undefined` means dismissed (nothing is sent for it). */
export type ApprovalPrompt = (approval: PendingApproval) => Promise<ApprovalDecision | undefined>;

type Listener<T> = (value: T) => void;

/** One handshaken connection to the daemon. */
export class LocusClient {
  private readonly approvals = new Map<string, () => void>();
  private readonly listeners = {
    event: new Set<Listener<RunEvent>>(),
    needsYou: new Set<Listener<NeedsYou>>(),
    started: new Set<Listener<Run>>(),
    progress: new Set<Listener<{ token: string | number; value: unknown }>>(),
    close: new Set<Listener<void>>(),
  };
  private prompt: ApprovalPrompt | undefined;

  private constructor(
    private readonly transport: Transport,
    readonly capabilities: LocusCapabilities,
  ) {
    transport.closed.then(() => this.listeners.close.forEach((f) => f()));
  }

  /** Connect and handshake; a protocol mismatch is refused with both versions named. */
  static async connect(options: ConnectOptions = {}): Promise<LocusClient> {
    const transport = options.socket
      ? await openSocket(options.socket)
      : await openStdio(options.daemonPath || "locusd", options.env);
    const client = new LocusClientBuilder(transport);
    try {
      return await client.handshake(options);
    } catch (error) {
      transport.dispose();
      throw error;
    }
  }

  /** @internal used by the builder below (the constructor stays private to callers). */
  static create(transport: Transport, capabilities: LocusCapabilities): LocusClient {
    return new LocusClient(transport, capabilities);
  }

  get connection(): MessageConnection {
    return this.transport.connection;
  }

  /** Installs the handlers; called once, before the handshake. */
  static wire(connection: MessageConnection, get: () => LocusClient | undefined): void {
    connection.onNotification("locus/runs/event", (event: RunEvent) => get()?.listeners.event.forEach((f) => f(event)));
    connection.onNotification("locus/needsYou", (value: NeedsYou) => get()?.listeners.needsYou.forEach((f) => f(value)));
    connection.onNotification("locus/runs/started", (run: Run) => get()?.listeners.started.forEach((f) => f(run)));
    connection.onNotification("$/progress", (value: { token: string | number; value: unknown }) =>
      get()?.listeners.progress.forEach((f) => f(value)),
    );
    connection.onNotification("locus/approval/resolved", (value: ApprovalResolved) => get()?.approvals.get(value.approvalId)?.());
    connection.onRequest("window/workDoneProgress/create", () => null);
    connection.onRequest("locus/approval", (request: ApprovalRequest, token: CancellationToken) => {
      const client = get();
      if (!client) throw new ResponseError(-32601, "no client yet");
      return client.answerApproval(request, token);
    });
  }

  private async answerApproval(request: ApprovalRequest, token: CancellationToken): Promise<ApprovalAnswer> {
    let settle!: () => void;
    const settled = new Promise<void>((resolve) => (settle = resolve));
    this.approvals.set(request.approvalId, settle);
    token.onCancellationRequested(() => settle());
    try {
      const asked = this.prompt ? this.prompt({ request, settled }).then((d) => d) : new Promise<undefined>(() => {});
      // Dismissed (undefined): nothing is sent; the request stays open until the daemon
      // withdraws it (another client answered, or the run was cancelled).
      const decision = await Promise.race([asked.then((d) => d ?? settled.then(() => undefined)), settled.then(() => undefined)]);
      if (decision === undefined) throw new ResponseError(Codes.requestCancelled, "answered elsewhere or withdrawn");
      return { decision };
    } finally {
      this.approvals.delete(request.approvalId);
      settle();
    }
  }

  /** How `locus/approval` requests are answered (one prompt at a time per request). */
  onApproval(prompt: ApprovalPrompt): void {
    this.prompt = prompt;
  }
  onRunEvent(f: Listener<RunEvent>): () => void {
    return this.listen("event", f);
  }
  onNeedsYou(f: Listener<NeedsYou>): () => void {
    return this.listen("needsYou", f);
  }
  onRunStarted(f: Listener<Run>): () => void {
    return this.listen("started", f);
  }
  onProgress(f: Listener<{ token: string | number; value: unknown }>): () => void {
    return this.listen("progress", f);
  }
  onClose(f: Listener<void>): () => void {
    return this.listen("close", f);
  }
  private listen<K extends keyof LocusClient["listeners"]>(kind: K, f: LocusClient["listeners"][K] extends Set<infer L> ? L : never): () => void {
    const set = this.listeners[kind] as Set<typeof f>;
    set.add(f);
    return () => set.delete(f);
  }

  /** A typed request (params and result from the generated protocol types). */
  request<M extends MethodName>(method: M, params: ParamsOf<M>): Promise<ResultOf<M>> {
    return this.connection.sendRequest(method, params) as Promise<ResultOf<M>>;
  }

  status = () => this.request("locus/daemon/status", {});
  tasks = (params: ParamsOf<"locus/tasks/list"> = {}) => this.request("locus/tasks/list", params);
  createTask = (params: ParamsOf<"locus/tasks/create">) => this.request("locus/tasks/create", params);
  pullTask = (params: ParamsOf<"locus/tasks/pull">) => this.request("locus/tasks/pull", params);
  runs = () => this.request("locus/runs/list", {});
  startRun = (params: ParamsOf<"locus/runs/start">) => this.request("locus/runs/start", params);
  resolveRun = (handle: string) => this.request("locus/runs/resolve", { handle });
  subscribe = (runId: string) => this.request("locus/runs/subscribe", { runId });
  unsubscribe = (runId: string) => this.request("locus/runs/unsubscribe", { runId });
  logs = (params: ParamsOf<"locus/runs/logs">) => this.request("locus/runs/logs", params);
  cancelRun = (params: ParamsOf<"locus/runs/cancel">) => this.request("locus/runs/cancel", params);
  review = (runId: string) => this.request("locus/review/get", { runId });
  content = (runId: string, path: string) => this.request("locus/review/content", { runId, path });
  commit = (params: ParamsOf<"locus/review/commit">) => this.request("locus/review/commit", params);
  sendBack = (runId: string, revision: string) => this.request("locus/review/send_back", { runId, revision });

  /**
   * Decide hunks (or whole files) at `revision`. A stale revision is never retried with the
   * old decisions: the review is fetched again and returned for the person to look at.
   */
  async decide(runId: string, revision: string, decisions: Record<string, DecisionIn>): Promise<{ stale: boolean; view: ReviewView }> {
    try {
      return { stale: false, view: await this.request("locus/review/decide", { runId, revision, decisions }) };
    } catch (error) {
      if (error instanceof ResponseError && error.code === Codes.reviewStale) {
        return { stale: true, view: await this.review(runId) };
      }
      throw error;
    }
  }

  /** LSP shutdown + exit (this connection only; the daemon goes on). */
  async close(): Promise<void> {
    try {
      await this.connection.sendRequest("shutdown");
      await this.connection.sendNotification("exit");
    } catch {
      // already gone
    }
    this.transport.dispose();
  }
}

class LocusClientBuilder {
  private client: LocusClient | undefined;
  constructor(private readonly transport: Transport) {
    LocusClient.wire(transport.connection, () => this.client);
    transport.connection.listen();
  }

  async handshake(options: ConnectOptions): Promise<LocusClient> {
    const wanted = options.protocolVersion ?? PROTOCOL_VERSION;
    const closed = this.transport.closed.then(() => {
      throw new LocusConnectError("the daemon closed the connection during the handshake");
    });
    let result: { capabilities?: { experimental?: { locus?: LocusCapabilities } } };
    try {
      result = await Promise.race([
        this.transport.connection.sendRequest("initialize", {
          processId: process.pid,
          capabilities: { window: { workDoneProgress: true } },
          initializationOptions: {
            locus: { protocolVersion: wanted, client: { name: options.clientName ?? "vscode", version: options.clientVersion ?? null } },
          },
        }) as Promise<typeof result>,
        closed,
      ]);
    } catch (error) {
      if (error instanceof ResponseError && error.code === Codes.unsupportedProtocol) {
        const data = (error.data ?? {}) as { daemonProtocolVersion?: string };
        throw new ProtocolMismatch(
          `the daemon speaks protocol ${data.daemonProtocolVersion ?? "?"}, this extension ${wanted}: update the extension or Locus so that the major versions match`,
        );
      }
      throw error;
    }
    const locus = result.capabilities?.experimental?.locus;
    if (!locus || majorOf(locus.protocolVersion) !== majorOf(wanted)) {
      throw new ProtocolMismatch(
        `the daemon speaks protocol ${locus?.protocolVersion ?? "(none)"}, this extension ${wanted}: update the extension or Locus so that the major versions match`,
      );
    }
    this.transport.connection.sendNotification("initialized", {});
    this.client = LocusClient.create(this.transport, locus);
    return this.client;
  }
}

function majorOf(version: string): string {
  return version.split(".")[0] ?? "";
}

/** Delays between reconnect attempts: doubling from `first`, capped at `max`. */
export function backoff(attempt: number, first = 500, max = 30_000): number {
  return Math.min(max, first * 2 ** Math.max(0, attempt));
}

export type ConnectionState =
  | { kind: "connecting"; attempt: number }
  | { kind: "connected"; client: LocusClient }
  | { kind: "disconnected"; error: string; retryInMs: number }
  | { kind: "stopped"; error?: string };

/**
 * Keeps one client connected: after the daemon goes away it reconnects with backoff (a
 * protocol mismatch stops trying: retrying cannot fix it).
 */
export class Reconnector {
  private attempt = 0;
  private timer: NodeJS.Timeout | undefined;
  private stopped = false;
  private current: LocusClient | undefined;

  constructor(
    private readonly options: ConnectOptions,
    private readonly onState: (state: ConnectionState) => void,
    private readonly delay: (attempt: number) => number = backoff,
  ) {}

  get client(): LocusClient | undefined {
    return this.current;
  }

  async start(): Promise<void> {
    if (this.stopped) return;
    clearTimeout(this.timer);
    this.onState({ kind: "connecting", attempt: this.attempt });
    try {
      const client = await LocusClient.connect(this.options);
      if (this.stopped) {
        await client.close();
        return;
      }
      this.attempt = 0;
      this.current = client;
      client.onClose(() => {
        if (this.current === client) this.current = undefined;
        this.retry("the daemon closed the connection");
      });
      this.onState({ kind: "connected", client });
    } catch (error) {
      const message = error instanceof Error ? error.message : String(error);
      if (error instanceof ProtocolMismatch) {
        this.stopped = true;
        this.onState({ kind: "stopped", error: message });
      } else {
        this.retry(message);
      }
    }
  }

  private retry(error: string): void {
    if (this.stopped) return;
    const wait = this.delay(this.attempt++);
    this.onState({ kind: "disconnected", error, retryInMs: wait });
    this.timer = setTimeout(() => void this.start(), wait);
  }

  async stop(): Promise<void> {
    this.stopped = true;
    clearTimeout(this.timer);
    const client = this.current;
    this.current = undefined;
    await client?.close();
    this.onState({ kind: "stopped" });
  }
}
