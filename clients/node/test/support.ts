/**
 * Test support: the real chanlayer server binary on loopback, and a TCP proxy that can cut
 * every connection through it (to break session streams without stopping the server).
 */

import { type ChildProcess, spawn } from "node:child_process";
import { existsSync } from "node:fs";
import { createConnection, createServer, type Server, type Socket } from "node:net";
import { dirname, join } from "node:path";
import { createInterface } from "node:readline";
import { fileURLToPath } from "node:url";

const repoRoot = join(dirname(fileURLToPath(import.meta.url)), "..", "..", "..", "..");

/** The server binary: `$CHANLAYER_BIN`, else the repository's release build. */
export function serverBinary(): string {
  const bin = process.env.CHANLAYER_BIN ?? join(repoRoot, "target", "release", "chanlayer");
  if (!existsSync(bin)) {
    throw new Error(`no server binary at ${bin}: build it (cargo build --release) or set CHANLAYER_BIN`);
  }
  return bin;
}

/** A running server process. */
export class ServerProcess {
  private constructor(
    readonly child: ChildProcess,
    /** `host:port` it listens on. */
    readonly target: string,
  ) {}

  /** Starts the server on `listen` (default: a free loopback port) with extra flags. */
  static async start(args: string[] = [], listen = "127.0.0.1:0"): Promise<ServerProcess> {
    const child = spawn(serverBinary(), ["serve", "--listen", listen, "--log-format", "json", ...args], {
      stdio: ["ignore", "pipe", "pipe"],
    });
    const lines = createInterface({ input: child.stdout as NodeJS.ReadableStream });
    const errLines = createInterface({ input: child.stderr as NodeJS.ReadableStream });
    const target = await new Promise<string>((resolve, reject) => {
      const timer = setTimeout(() => reject(new Error("the server did not start within 10 s")), 10_000);
      const onLine = (line: string): void => {
        if (!line.includes("chanlayer listening")) return;
        try {
          const record = JSON.parse(line) as { fields?: { addr?: string } };
          if (record.fields?.addr) {
            clearTimeout(timer);
            resolve(record.fields.addr);
          }
        } catch {
          // not JSON: keep waiting
        }
      };
      lines.on("line", onLine);
      errLines.on("line", onLine);
      child.once("exit", (code) => {
        clearTimeout(timer);
        reject(new Error(`the server exited with ${code} before listening`));
      });
    });
    return new ServerProcess(child, target);
  }

  /** The port it listens on. */
  get port(): number {
    return Number(this.target.split(":").pop());
  }

  /** Stops it with SIGTERM (graceful) and waits for it to exit (SIGKILL after 10 s). */
  async stop(): Promise<void> {
    if (this.child.exitCode !== null || this.child.signalCode !== null) return;
    const exited = new Promise<void>((resolve) => this.child.once("exit", () => resolve()));
    this.child.kill("SIGTERM");
    const timer = setTimeout(() => this.child.kill("SIGKILL"), 10_000);
    await exited;
    clearTimeout(timer);
  }
}

/** A TCP proxy to a target whose connections can all be cut at once, and new ones refused. */
export class CuttableProxy {
  private readonly sockets = new Set<Socket>();
  private refusing = false;

  private constructor(private readonly server: Server) {}

  /** Starts a proxy on a free loopback port forwarding to `target` (`host:port`). */
  static async start(target: string): Promise<CuttableProxy> {
    const [host, port] = [target.slice(0, target.lastIndexOf(":")), Number(target.split(":").pop())];
    const proxy: CuttableProxy = new CuttableProxy(
      createServer((client) => {
        if (proxy.refusing) {
          client.destroy();
          return;
        }
        const upstream = createConnection({ host, port });
        proxy.sockets.add(client);
        proxy.sockets.add(upstream);
        client.pipe(upstream).pipe(client);
        const drop = (): void => {
          client.destroy();
          upstream.destroy();
          proxy.sockets.delete(client);
          proxy.sockets.delete(upstream);
        };
        client.on("error", drop).on("close", drop);
        upstream.on("error", drop).on("close", drop);
      }),
    );
    await new Promise<void>((resolve) => proxy.server.listen(0, "127.0.0.1", resolve));
    return proxy;
  }

  /** `host:port` of the proxy. */
  get target(): string {
    const address = this.server.address();
    if (address === null || typeof address === "string") throw new Error("proxy not listening");
    return `127.0.0.1:${address.port}`;
  }

  /** Destroys every connection through the proxy. */
  cut(): void {
    for (const socket of this.sockets) socket.destroy();
    this.sockets.clear();
  }

  /** While `refusing`, new connections are closed at once (the target looks down). */
  refuse(refusing: boolean): void {
    this.refusing = refusing;
  }

  /** Stops the proxy. */
  async close(): Promise<void> {
    this.cut();
    await new Promise<void>((resolve) => this.server.close(() => resolve()));
  }
}

/** Resolves after `ms` milliseconds. */
export function sleep(ms: number): Promise<void> {
  return new Promise((resolve) => setTimeout(resolve, ms));
}

/** Polls `check` every 20 ms until it is true, for at most `timeoutMs`. */
export async function eventually(check: () => boolean | Promise<boolean>, timeoutMs = 5000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (Date.now() < deadline) {
    if (await check()) return;
    await sleep(20);
  }
  throw new Error(`condition not met within ${timeoutMs} ms`);
}
