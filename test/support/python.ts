/**
 * Python itself as the reference a test asks (its json, fnmatch, codecs, PyYAML): one python3
 * process per batch, the inputs as JSON on its standard input, its answers as JSON on its
 * standard output.
 */

/** The python3 that has PyYAML: the one on PATH, else Debian's (`.ci/run` installs python3-yaml when neither has it). */
export const PYTHON_WITH_YAML = ["python3", "/usr/bin/python3"].find((python) => Bun.spawnSync([python, "-c", "import yaml"], { stdout: "ignore", stderr: "ignore" }).exitCode === 0) ?? "python3";

/** The python3 that has the `jsonpointer` module: the one on PATH, else Debian's (`.ci/run` installs python3-json-pointer when neither has it). */
export const PYTHON_WITH_JSONPOINTER = ["python3", "/usr/bin/python3"].find((python) => Bun.spawnSync([python, "-c", "import jsonpointer"], { stdout: "ignore", stderr: "ignore" }).exitCode === 0) ?? "python3";

/** Runs `script` with `input` as JSON on its standard input; what it prints, read as JSON. */
export async function askPython<T>(script: string, input: unknown, python = "python3"): Promise<T> {
  const child = Bun.spawn([python, "-c", script], { stdin: new Blob([JSON.stringify(input)]), stdout: "pipe", stderr: "pipe" });
  const [stdout, stderr, code] = await Promise.all([new Response(child.stdout).text(), new Response(child.stderr).text(), child.exited]);
  if (code !== 0) throw new Error(`${python} failed: ${stderr}`);
  return JSON.parse(stdout) as T;
}
