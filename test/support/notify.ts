/**
 * A $NOTIFY_SOCKET as systemd has one: a unix datagram socket (a path, or an abstract name
 * with a leading `@`), here bound by python3, which prints each message it receives.
 */
import type { Subprocess } from "bun";

export class NotifySocket {
  readonly messages: string[] = [];
  private constructor(readonly address: string, private readonly child: Subprocess<"ignore", "pipe", "inherit">) {}

  static async open(address: string): Promise<NotifySocket> {
    const bind = address.startsWith("@") ? `"\\0${address.slice(1)}"` : JSON.stringify(address);
    const script = [
      "import socket, sys, json",
      "s = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)",
      `s.bind(${bind})`,
      "print('bound', flush=True)",
      "while True:",
      "    print(json.dumps(s.recv(65536).decode()), flush=True)",
    ].join("\n");
    const child = Bun.spawn(["python3", "-c", script], { stdin: "ignore", stdout: "pipe", stderr: "inherit" });
    const socket = new NotifySocket(address, child);
    let bound: () => void = () => {};
    const ready = new Promise<void>((resolve) => (bound = resolve));
    void (async () => {
      const decoder = new TextDecoder();
      let buffer = "";
      for await (const chunk of child.stdout) {
        buffer += decoder.decode(chunk, { stream: true });
        let newline: number;
        while ((newline = buffer.indexOf("\n")) >= 0) {
          const line = buffer.slice(0, newline);
          buffer = buffer.slice(newline + 1);
          if (line === "bound") bound();
          else socket.messages.push(JSON.parse(line));
        }
      }
    })();
    await ready;
    return socket;
  }

  /** Waits until a message satisfies `test` (at most `ms`), and returns it. */
  async waitFor(test: (message: string) => boolean, ms = 5000): Promise<string> {
    const end = Date.now() + ms;
    while (Date.now() < end) {
      const found = this.messages.find(test);
      if (found) return found;
      await Bun.sleep(20);
    }
    throw new Error(`no notify message matched within ${ms} ms; got ${JSON.stringify(this.messages)}`);
  }

  close(): void {
    this.child.kill();
  }
}
