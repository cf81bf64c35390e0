/** Writes what is generated from src/config/keys.ts: the JSON Schema and the README's reference. */
import { configSchemaText } from "../src/config/schema";
import { withReference } from "../src/config/reference";

export const SCHEMA_FILE = "schema/cachish.schema.json";

if (import.meta.main) {
  await Bun.write(SCHEMA_FILE, configSchemaText());
  await Bun.write("README.md", withReference(await Bun.file("README.md").text()));
  console.log(`wrote ${SCHEMA_FILE} and the reference in README.md`);
}
