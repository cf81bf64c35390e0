/**
 * Which configuration file a command reads: `--config FILE`, else `$CACHISH_CONFIG_FILE`
 * (1.x read it), else /etc/cachish.yml. Shared by serve, check-config and `get --config`.
 */
export const DEFAULT_CONFIG_FILE = "/etc/cachish.yml";

export function locateConfig(option: string | undefined, env: Record<string, string | undefined> = process.env): string {
  if (option) return option;
  if (env.CACHISH_CONFIG_FILE) return env.CACHISH_CONFIG_FILE;
  return DEFAULT_CONFIG_FILE;
}
