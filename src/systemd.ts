/**
 * The sd_notify protocol, without libsystemd: a datagram on the AF_UNIX socket that systemd
 * names in $NOTIFY_SOCKET (a path, or an abstract name written with a leading `@`). Node's and
 * Bun's socket APIs have no unix datagram sockets, so the few libc calls go through bun:ffi.
 * Nothing here runs unless $NOTIFY_SOCKET is set.
 */
import type { Pointer } from "bun:ffi";
import type { Logger } from "./log";
import { messageOf } from "./error-text";

const AF_UNIX = 1;
const SOCK_DGRAM = 2;
const SOCK_CLOEXEC = 0o2000000;
const SUN_PATH = 108;

/** bun:ffi costs about 1 MB of memory to load: only a daemon under systemd loads it. */
const ffi = (): typeof import("bun:ffi") => require("bun:ffi");

type Libc = {
  socket(domain: number, type: number, protocol: number): number;
  sendto(fd: number, buf: Pointer, len: number, flags: number, addr: Pointer, addrlen: number): number | bigint;
  close(fd: number): number;
};

function openLibc(): Libc {
  const { dlopen, FFIType } = ffi();
  const { symbols } = dlopen("libc.so.6", {
    socket: { args: [FFIType.i32, FFIType.i32, FFIType.i32], returns: FFIType.i32 },
    sendto: { args: [FFIType.i32, FFIType.ptr, FFIType.u64, FFIType.i32, FFIType.ptr, FFIType.u32], returns: FFIType.i64 },
    close: { args: [FFIType.i32], returns: FFIType.i32 },
  });
  return symbols as unknown as Libc;
}

/** The sockaddr_un of a $NOTIFY_SOCKET value, and its length as sendto() wants it. */
export function socketAddress(target: string): { address: Uint8Array; length: number } | undefined {
  const abstract = target.startsWith("@");
  const name = new TextEncoder().encode(abstract ? `\0${target.slice(1)}` : target);
  if (name.length === 0 || name.length >= SUN_PATH) return undefined;
  const address = new Uint8Array(2 + SUN_PATH);
  new DataView(address.buffer).setUint16(0, AF_UNIX, true);
  address.set(name, 2);
  // An abstract name is exactly its bytes; a path ends with its NUL.
  return { address, length: 2 + name.length + (abstract ? 0 : 1) };
}

export type Notifier = {
  ready(status: string): void;
  reloading(): void;
  stopping(): void;
  /** Starts WATCHDOG=1 pings at half of $WATCHDOG_USEC, when systemd asks for them. */
  watchdog(): void;
  close(): void;
};

const silent: Notifier = { ready() {}, reloading() {}, stopping() {}, watchdog() {}, close() {} };

export function systemdNotifier(env: Record<string, string | undefined>, log: Logger): Notifier {
  const target = env.NOTIFY_SOCKET;
  if (!target) return silent;
  const address = socketAddress(target);
  if (!address || process.platform !== "linux") {
    log.warn("NOTIFY_SOCKET is set but cannot be used; systemd will not hear of readiness", { notify_socket: target });
    return silent;
  }
  let libc: Libc;
  let fd: number;
  try {
    libc = openLibc();
    fd = libc.socket(AF_UNIX, SOCK_DGRAM | SOCK_CLOEXEC, 0);
    if (fd < 0) throw new Error("socket() failed");
  } catch (error) {
    log.warn("cannot open a socket to NOTIFY_SOCKET; systemd will not hear of readiness", { cause: messageOf(error) });
    return silent;
  }
  const { ptr } = ffi();
  const send = (message: string) => {
    const bytes = new TextEncoder().encode(message);
    const sent = Number(libc.sendto(fd, ptr(bytes), bytes.length, 0, ptr(address.address), address.length));
    if (sent < 0) log.warn("a message to NOTIFY_SOCKET was not sent", { message: message.split("\n")[0] });
  };
  let pinger: ReturnType<typeof setInterval> | undefined;
  return {
    ready: (status) => send(`READY=1\nSTATUS=${status.replace(/\n/g, " ")}\nMAINPID=${process.pid}`),
    // MONOTONIC_USEC lets a Type=notify-reload unit match this message to its reload request.
    reloading: () => send(`RELOADING=1\nSTATUS=reloading the configuration\nMONOTONIC_USEC=${process.hrtime.bigint() / 1000n}`),
    stopping: () => send("STOPPING=1\nSTATUS=stopping"),
    watchdog() {
      const usec = Number(env.WATCHDOG_USEC);
      const forUs = !env.WATCHDOG_PID || Number(env.WATCHDOG_PID) === process.pid;
      if (!Number.isFinite(usec) || usec <= 0 || !forUs || pinger) return;
      send("WATCHDOG=1");
      pinger = setInterval(() => send("WATCHDOG=1"), Math.max(1, Math.floor(usec / 2000)));
    },
    close() {
      if (pinger) clearInterval(pinger);
      libc.close(fd);
    },
  };
}
