/**
 * A real systemd 252, booted as PID 1 of a private container by systemd-nspawn on a copy of the
 * Debian root of debian-root.ts: only a loopback network (`--private-network`), nothing of this
 * machine's but the files bound in. `--keep-unit` because this machine's PID 1 is not systemd
 * (there is no unit to make for the container); `--register=no` because there is no machined.
 * Commands run inside through nsenter, in all of the container's namespaces.
 */
import { readdirSync, readFileSync } from "node:fs";
import { join } from "node:path";
import type { Subprocess } from "bun";
import { rootMissing } from "./debian-root";

export type Ran = { code: number; stdout: string; stderr: string };

/** Why no container can be started here, or undefined when one can. */
export function containerMissing(): string | undefined {
  if (process.getuid?.() !== 0) return "not root (systemd-nspawn needs it)";
  if (!Bun.which("systemd-nspawn")) return "systemd-nspawn is not installed (.ci/run installs systemd-container)";
  if (!Bun.which("nsenter")) return "nsenter is not installed (util-linux)";
  return rootMissing();
}

/** The environment of a command run inside: nothing of this process's. */
const INSIDE_ENV = ["PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin", "LANG=C.UTF-8", "HOME=/root"];

export class Container {
  #nspawn: Subprocess<"ignore", "ignore", "pipe"> | undefined;
  #leader = 0;

  private constructor(
    readonly root: string,
    readonly binds: string[],
  ) {}

  /** Boots a container on this root (a folder it may change), binding `SOURCE:DEST` read-only. */
  static async boot(root: string, binds: string[] = []): Promise<Container> {
    const container = new Container(root, binds);
    await container.#start();
    return container;
  }

  /** Boots; a container that does not come up is killed before the error goes on (nobody else holds it). */
  async #start(): Promise<void> {
    try {
      await this.#boot();
    } catch (error) {
      await this.#kill();
      throw error;
    }
  }

  async #boot(): Promise<void> {
    const nspawn = Bun.spawn(
      ["systemd-nspawn", "--quiet", "-D", this.root, "--register=no", "--keep-unit", "--private-network", "--console=passive", ...this.binds.map((b) => `--bind-ro=${b}`), "-b"],
      { stdin: "ignore", stdout: "ignore", stderr: "pipe", env: { PATH: process.env.PATH ?? "/usr/bin:/bin" } },
    );
    this.#nspawn = nspawn;
    const deadline = Date.now() + 60_000;
    // The container's PID 1 is nspawn's child once it has started systemd.
    while (Date.now() < deadline) {
      if (nspawn.exitCode !== null) throw new Error(`systemd-nspawn ended (${nspawn.exitCode}) before the container booted: ${await new Response(nspawn.stderr).text()}`);
      this.#leader = childOf(nspawn.pid);
      if (this.#leader && readFileSync(`/proc/${this.#leader}/comm`, "utf8").trim() === "systemd") {
        // Returns once the boot is over: "running", or "degraded" when a unit failed (for the test to look at).
        const state = await this.run(["timeout", "60", "systemctl", "is-system-running", "--wait"]);
        if (["running", "degraded"].includes(state.stdout.trim())) return;
      }
      await Bun.sleep(100);
    }
    throw new Error("the container did not boot within 60 s");
  }

  /** Runs a command inside, as root, with a small known environment; `input` is its standard input. */
  async run(args: string[], input?: string): Promise<Ran> {
    const child = Bun.spawn(["nsenter", "-t", String(this.#leader), "-m", "-u", "-i", "-n", "-p", "-C", "-r", "-w", "env", "-i", ...INSIDE_ENV, ...args], {
      stdin: input === undefined ? "ignore" : new TextEncoder().encode(input),
      stdout: "pipe",
      stderr: "pipe",
    });
    const [stdout, stderr, code] = await Promise.all([new Response(child.stdout).text(), new Response(child.stderr).text(), child.exited]);
    return { code, stdout, stderr };
  }

  /** A shell script run inside (`sh -c`). */
  sh(script: string, input?: string): Promise<Ran> {
    return this.run(["/bin/sh", "-c", script], input);
  }

  /** Reboots the container as its operator would (`systemctl reboot`), and waits for it to be up again. */
  async reboot(): Promise<void> {
    await this.run(["systemctl", "reboot"]);
    // nspawn ends when the container's systemd reboots (status 133); the same root boots again.
    if (!(await this.#ended(60_000))) {
      await this.#kill();
      throw new Error("the container did not reboot within 60 s");
    }
    await this.#start();
  }

  /** Powers the container off; killed if it is not off within 20 s. */
  async stop(): Promise<void> {
    if (!this.#nspawn || this.#nspawn.exitCode !== null) return;
    this.#nspawn.kill("SIGTERM"); // nspawn asks the container's systemd to power off
    if (!(await this.#ended(20_000))) await this.#kill();
  }

  async #kill(): Promise<void> {
    const nspawn = this.#nspawn;
    if (!nspawn || nspawn.exitCode !== null) return;
    // PID 1 of its namespace: every process inside goes with it.
    if (this.#leader) process.kill(this.#leader, "SIGKILL");
    nspawn.kill("SIGKILL");
    await nspawn.exited;
  }

  async #ended(ms: number): Promise<boolean> {
    const nspawn = this.#nspawn!;
    return Promise.race([nspawn.exited.then(() => true), Bun.sleep(ms).then(() => false)]);
  }
}

/** The one child process of `pid`, or 0. */
function childOf(pid: number): number {
  for (const entry of readdirSync("/proc")) {
    if (!/^\d+$/.test(entry)) continue;
    try {
      // Field 4 of /proc/PID/stat, after the command name in parentheses, is the parent's PID.
      const stat = readFileSync(join("/proc", entry, "stat"), "utf8");
      if (Number(stat.slice(stat.lastIndexOf(")") + 2).split(" ")[1]) === pid) return Number(entry);
    } catch {
      // A process that ended while the list was read.
    }
  }
  return 0;
}
