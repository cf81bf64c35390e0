/**
 * Bytes on a socket to the daemon, as a client that an HTTP library would not imitate sends them
 * (pipelined requests, malformed request lines, repeated headers).
 */

/**
 * What comes back for `request` sent as it is: until the daemon closes the connection, `done`
 * says the answer is whole (then this side closes it), or `ms` pass.
 */
export async function exchange(address: string, request: string, options: { done?: (received: string) => boolean; ms?: number } = {}): Promise<string> {
  const [hostname, port] = address.split(":");
  let received = "";
  await new Promise<void>((resolve) => {
    const timer = setTimeout(resolve, options.ms ?? 1000);
    void Bun.connect({
      hostname: hostname!,
      port: Number(port),
      socket: {
        open: (socket) => void socket.write(request),
        data: (socket, data) => {
          received += data.toString();
          if (options.done?.(received)) socket.end();
        },
        close: () => {
          clearTimeout(timer);
          resolve();
        },
      },
    });
  });
  return received;
}
