/**
 * Runs a citty command tree the way an operator's shell expects: usage errors (an unknown
 * command or option, a missing value) exit 2 instead of citty's 1, help goes to stdout
 * without colour codes unless stdout is a terminal, and a command's returned number is its
 * exit code. citty parses and renders; this decides what is printed and how it ends.
 */
import { type ArgsDef, type CommandDef, renderUsage, runCommand } from "citty";
import { didYouMean } from "../config/suggest";
import { CliError, UsageError } from "./errors";

/** A command with a text shown after its options in --help (exit codes, examples). */
export type Command = CommandDef<any> & { footer?: string };

export type Output = { out(text: string): void; err(text: string): void; color: boolean };

const ANSI = /\u001B\[[0-9;]*m/g;

async function resolve<T>(value: T | Promise<T> | (() => T | Promise<T>)): Promise<T> {
  return typeof value === "function" ? (value as () => T | Promise<T>)() : value;
}

/** The command that `argv` names, its parent, and the arguments left for it. */
async function findCommand(root: Command, argv: string[]): Promise<{ cmd: Command; parent?: Command; rest: string[] }> {
  let cmd = root;
  let parent: Command | undefined;
  let rest = argv;
  for (;;) {
    const subCommands = await resolve(cmd.subCommands);
    if (!subCommands || Object.keys(subCommands).length === 0) return { cmd, parent, rest };
    const index = rest.findIndex((arg) => !arg.startsWith("-"));
    if (index < 0 || rest.slice(0, index).includes("--")) return { cmd, parent, rest };
    const name = rest[index]!;
    const sub = subCommands[name];
    if (!sub) throw new UsageError(`unknown command \`${name}\`${didYouMean(name, Object.keys(subCommands))}`);
    [parent, cmd, rest] = [cmd, (await resolve(sub)) as Command, rest.slice(index + 1)];
  }
}

const kebab = (name: string) => name.replace(/[A-Z]/g, (c) => `-${c.toLowerCase()}`);

/** citty ignores options it does not know; a typo in a unit file must not pass silently. */
function checkArguments(args: ArgsDef, argv: string[]): void {
  const options = new Map<string, ArgsDef[string]>();
  for (const [name, def] of Object.entries(args)) {
    if (def.type === "positional") continue;
    options.set(`--${kebab(name)}`, def);
    const aliases = "alias" in def ? [def.alias ?? []].flat() : [];
    for (const alias of aliases) options.set(alias.length === 1 ? `-${alias}` : `--${alias}`, def);
  }
  const positionals = Object.values(args).filter((def) => def.type === "positional").length;
  let seen = 0;
  for (let i = 0; i < argv.length; i++) {
    const arg = argv[i]!;
    if (arg === "--") {
      seen += argv.length - i - 1;
      break;
    }
    if (!arg.startsWith("-") || arg === "-") {
      if (++seen > positionals) throw new UsageError(`unexpected argument \`${arg}\``);
      continue;
    }
    const [flag, inline] = arg.includes("=") ? [arg.slice(0, arg.indexOf("=")), true] : [arg, false];
    const negated = flag.startsWith("--no-") ? options.get(`--${flag.slice(5)}`) : undefined;
    const def = options.get(flag) ?? (negated?.type === "boolean" ? negated : undefined);
    if (!def) throw new UsageError(`unknown option \`${flag}\`${didYouMean(flag, options.keys())}`);
    if ((def.type === "string" || def.type === "enum") && !inline) {
      const value = argv[i + 1];
      if (value === undefined || (value.startsWith("-") && value !== "-")) throw new UsageError(`option \`${flag}\` needs a value`);
      i++;
    }
  }
}

async function usage(cmd: Command, parent: Command | undefined, color: boolean): Promise<string> {
  const text = (await renderUsage(cmd, parent)) + (cmd.footer ? `\n\n${cmd.footer}` : "");
  return (color ? text : text.replace(ANSI, "")) + "\n";
}

/** Runs the command `argv` names and returns the process's exit code. */
export async function runCli(root: Command, argv: string[], io: Output): Promise<number> {
  const helpAsked = argv.slice(0, argv.includes("--") ? argv.indexOf("--") : argv.length).some((a) => a === "--help" || a === "-h");
  let found: Awaited<ReturnType<typeof findCommand>> | undefined;
  try {
    found = await findCommand(root, argv);
    if (helpAsked) {
      io.out(await usage(found.cmd, found.parent, io.color));
      return 0;
    }
    if (argv.length === 1 && (argv[0] === "--version" || argv[0] === "-v")) {
      io.out(`${(await resolve(root.meta))?.version}\n`);
      return 0;
    }
    if (found.cmd === root) {
      const subCommands = await resolve(root.subCommands);
      if (subCommands && Object.keys(subCommands).length > 0) {
        if (argv.length === 0) {
          io.err(await usage(root, undefined, io.color));
          return 2;
        }
      }
    }
    checkArguments(await resolve(found.cmd.args ?? {}), found.rest);
    // The command itself is run, not the root: citty drops a subcommand's result.
    const { result } = await runCommand(found.cmd, { rawArgs: found.rest });
    return typeof result === "number" ? result : 0;
  } catch (error) {
    if (error instanceof UsageError || (error instanceof Error && error.name === "CLIError")) {
      const name = [(await resolve(found?.parent?.meta))?.name, (await resolve(found?.cmd.meta ?? root.meta))?.name].filter(Boolean).join(" ");
      io.err(`${name}: ${error.message.replace(ANSI, "")}\nRun \`${name} --help\` for usage.\n`);
      return 2;
    }
    if (error instanceof CliError) {
      io.err(`${error.message}\n`);
      return error.exitCode;
    }
    throw error;
  }
}
