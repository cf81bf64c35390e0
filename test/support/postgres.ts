/**
 * A real PostgreSQL from Debian's packages, in a temp folder, on 127.0.0.1: started by the
 * tests (and the benchmark) that need one, stopped after them. `.ci/run` installs the package when it is missing;
 * where it cannot run, `findPostgres()` says why and the tests that need it are skipped by name.
 */
import { chownSync, existsSync, readdirSync } from "node:fs";
import { join } from "node:path";

const ROOT_BIN = "/usr/lib/postgresql";

/** The folder of initdb and pg_ctl, or why there is none. */
export function findPostgres(): { bin: string } | { missing: string } {
  if (!existsSync(ROOT_BIN)) return { missing: "PostgreSQL is not installed (apt-get install postgresql)" };
  const versions = readdirSync(ROOT_BIN).filter((v) => existsSync(join(ROOT_BIN, v, "bin/initdb"))).sort((a, b) => Number(b) - Number(a));
  if (!versions.length) return { missing: "no initdb under /usr/lib/postgresql" };
  if (process.getuid?.() === 0 && !Bun.which("runuser")) return { missing: "running as root without runuser, PostgreSQL cannot be started" };
  return { bin: join(ROOT_BIN, versions[0]!, "bin") };
}

export class Postgres {
  private constructor(
    readonly bin: string,
    readonly dir: string,
    readonly port: number,
  ) {}

  /** The database the fleet shares, with a role of its own. */
  get url(): string {
    return `postgres://cachish:fleet-pw@127.0.0.1:${this.port}/cachish`;
  }

  /** Runs a PostgreSQL program as the `postgres` user when the tests run as root (postgres refuses root). */
  run(program: string, args: string[]): { code: number; stdout: string; stderr: string } {
    const command = [join(this.bin, program), ...args];
    const ran = Bun.spawnSync(process.getuid?.() === 0 ? ["runuser", "-u", "postgres", "--", ...command] : command, { stdout: "pipe", stderr: "pipe" });
    return { code: ran.exitCode, stdout: ran.stdout.toString(), stderr: ran.stderr.toString() };
  }

  /** Initializes and starts a cluster in `dir` (an empty folder the caller removes). */
  static async start(bin: string, dir: string): Promise<Postgres> {
    if (process.getuid?.() === 0) chownSync(dir, Number(Bun.spawnSync(["id", "-u", "postgres"]).stdout.toString()), Number(Bun.spawnSync(["id", "-g", "postgres"]).stdout.toString()));
    const server = Bun.serve({ hostname: "127.0.0.1", port: 0, fetch: () => new Response() });
    const port = server.port!;
    await server.stop(true);
    const pg = new Postgres(bin, dir, port);
    const init = pg.run("initdb", ["-D", join(dir, "data"), "-U", "postgres", "--auth=trust", "--no-sync", "-E", "UTF8"]);
    if (init.code !== 0) throw new Error(`initdb failed: ${init.stderr}`);
    pg.startServer();
    pg.sql("CREATE ROLE cachish LOGIN PASSWORD 'fleet-pw'", "postgres");
    pg.sql("CREATE DATABASE cachish OWNER cachish", "postgres");
    return pg;
  }

  startServer(): void {
    const started = this.run("pg_ctl", ["-D", join(this.dir, "data"), "-l", join(this.dir, "log"), "-w", "-o", `-p ${this.port} -k ${this.dir} -c listen_addresses=127.0.0.1 -c fsync=off`, "start"]);
    if (started.code !== 0) throw new Error(`pg_ctl start failed: ${started.stderr}${started.stdout}`);
  }

  stopServer(): void {
    this.run("pg_ctl", ["-D", join(this.dir, "data"), "-w", "-m", "immediate", "stop"]);
  }

  sql(statement: string, database = "cachish"): string {
    const ran = this.run("psql", ["-h", "127.0.0.1", "-p", String(this.port), "-U", "postgres", "-d", database, "-v", "ON_ERROR_STOP=1", "-At", "-c", statement]);
    if (ran.code !== 0) throw new Error(`psql failed: ${ran.stderr}`);
    return ran.stdout;
  }

  dump(): string {
    return this.run("pg_dump", ["-h", "127.0.0.1", "-p", String(this.port), "-U", "postgres", "cachish"]).stdout;
  }
}
