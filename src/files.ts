/** Why a file could not be read, in words an operator acts on (never its content). */
export function readProblem(error: unknown): string {
  const code = (error as { code?: string }).code;
  if (code === "ENOENT") return "no such file";
  if (code === "EACCES") return "permission denied";
  if (code === "EISDIR") return "it is a folder";
  return code ?? (error instanceof Error ? error.message : "unreadable");
}
