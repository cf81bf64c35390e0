/**
 * What is wrong with a configuration file, where: the validator collects them all, check-config
 * and serve print them. A message names keys and positions, never a scalar of the file.
 */
export type Position = { line: number; column: number };
export type Problem = { severity: "error" | "warning"; message: string; at?: Position };

/** `FILE:LINE:COLUMN: severity: message`, as compilers print them (an editor jumps to it). */
export function formatProblem(file: string, problem: Problem): string {
  const where = problem.at ? `${file}:${problem.at.line}:${problem.at.column}` : file;
  return `${where}: ${problem.severity}: ${problem.message}`;
}
