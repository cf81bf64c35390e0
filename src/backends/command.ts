/**
 * `Command`: a program (a vendor's CLI: `aws`, `vault`, `op`) whose standard output is the
 * value. It gets exactly `env` and `PATH`: nothing else of cachish's environment, whose
 * variables (a systemd socket, a proxy, credentials of its own) are none of its business.
 */
import type { CommandParams } from "../config/types";
import { revealed, Secret } from "../config/secret";
import { startEnvironment } from "../environment";
import type { CommandBackend } from "./backend";

/** When cachish itself was started without PATH (systemd always sets one). */
const DEFAULT_PATH = "/usr/local/bin:/usr/bin:/bin";

export const command: CommandBackend<CommandParams> = {
  run: (params) => {
    const env = [...(params.env ?? [])];
    return {
      argv: params.argv.map((word) => revealed(word)),
      // `env` may set PATH: the operator's choice (a CLI installed under /opt) wins over cachish's.
      env: { PATH: startEnvironment.PATH ?? DEFAULT_PATH, ...Object.fromEntries(env.map(([name, value]) => [name, value.reveal()])) },
      secrets: [...params.argv.filter((word) => word instanceof Secret), ...env.map(([, value]) => value)].map((secret) => secret.reveal()),
    };
  },
  select: (params) => revealed(params.select),
  keys: (params) => params.field,
};
