/** Why a file could not be read or written, in words an operator acts on (never its content). */
export function fileProblem(error: unknown): string {
  const code = (error as { code?: string }).code;
  if (code === "ENOENT") return "no such file";
  if (code === "EACCES") return "permission denied";
  if (code === "EISDIR") return "it is a folder";
  if (code === "EROFS") return "read-only file system";
  if (code === "EPERM") return "operation not permitted (an immutable file? see lsattr)";
  return code ?? (error instanceof Error ? error.message : "unusable");
}
