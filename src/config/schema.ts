/**
 * The JSON Schema of cachish.yml (draft-07, what yaml-language-server reads), generated from
 * the one description in keys.ts. `npm run generate` writes it to schema/cachish.schema.json;
 * a test fails when that file is out of date.
 */
import type { Field, ObjectShape, Shape } from "./describe";
import { TOP } from "./keys";
import { STALE_KINDS } from "../stale-on";

type Json = { [key: string]: unknown };

const PATTERNS = {
  "http-url": "^https?://[^/?#]+",
  listen: "^(unix:.+|(\\[[0-9A-Fa-f:.]+\\]|[A-Za-z0-9.-]+):[0-9]{1,5})$",
  "sha256-hex": "^[0-9A-Fa-f]{64}$",
  "item-path": "^/[^?#\\s]*$",
  "header-name": "^[!#$%&'*+.^_`|~0-9A-Za-z-]+$",
  "postgres-url": "^postgres(ql)?://",
  "aes-256-key": "^[A-Za-z0-9+/]{43}=$",
  "json-pointer": "^(/([^/~]|~[01])*)*$",
  "stale-kind": `^(${STALE_KINDS.join("|")}|status-[1-5][0-9][0-9])$`,
  program: "^(/|[^/]+$)",
  "env-name": "^[A-Za-z_][A-Za-z0-9_]*$",
} as const;

function shapeSchema(shape: Shape): Json {
  switch (shape.type) {
    case "string": {
      const plain: Json = { type: "string", ...(shape.format ? { pattern: PATTERNS[shape.format] } : {}) };
      return shape.refs ? { anyOf: [plain, { $ref: "#/definitions/secretRef" }] } : plain;
    }
    case "boolean":
      return { type: "boolean" };
    case "duration":
      return { $ref: "#/definitions/duration" };
    case "size":
      return { $ref: "#/definitions/size" };
    case "enum":
      return { enum: [...shape.values] };
    case "one-or-list": {
      const one = shapeSchema(shape.of);
      // An empty list that cachish accepts with a warning is valid here too.
      return { anyOf: [one, { type: "array", items: one, ...(shape.emptyWarning || shape.emptyAllowed ? {} : { minItems: 1 }) }] };
    }
    case "list": {
      const items = shapeSchema(shape.of);
      return { type: "array", minItems: 1, ...(shape.first ? { items: [shapeSchema(shape.first)], additionalItems: items } : { items }) };
    }
    case "map":
      return {
        type: "object",
        ...(shape.keyFormat ? { propertyNames: { pattern: PATTERNS[shape.keyFormat] } } : {}),
        additionalProperties: shapeSchema(shape.values),
      };
    case "object":
      return objectSchema(shape);
    case "variant":
      return { type: "object" };
    case "any":
      return {};
  }
}

function fieldSchema(field: Field): Json {
  const schema = shapeSchema(field.shape);
  const described = { description: field.doc, ...(field.default !== undefined ? { default: field.default } : {}) };
  if (field.nullable) return { ...described, anyOf: [schema, { type: "null" }] };
  return { ...described, ...schema };
}

function objectSchema(shape: ObjectShape): Json {
  const schema: Json = {
    type: "object",
    properties: Object.fromEntries(Object.entries(shape.fields).map(([key, field]) => [key, fieldSchema(field)])),
  };
  const required = Object.entries(shape.fields).filter(([, f]) => f.required).map(([key]) => key);
  if (required.length) schema.required = required;
  // Where an unknown key is only a warning (1.x ignored it), the editor should not call it an error.
  if (shape.unknown === "error") schema.additionalProperties = false;
  const conditions: Json[] = [];
  for (const [key, field] of Object.entries(shape.fields)) {
    if (field.shape.type !== "variant") continue;
    const { discriminator, variants } = field.shape;
    for (const [name, variant] of Object.entries(variants)) {
      conditions.push({
        if: { properties: { [discriminator]: { const: name } }, required: [discriminator] },
        then: { properties: { [key]: objectSchema(variant) } },
      });
    }
  }
  for (const group of shape.exactlyOne ?? []) {
    conditions.push({ oneOf: group.map((key) => ({ required: [key] })) });
  }
  if (conditions.length) schema.allOf = conditions;
  return schema;
}

export function configSchema(): Json {
  return {
    $schema: "http://json-schema.org/draft-07/schema#",
    title: "cachish configuration (cachish.yml)",
    ...objectSchema(TOP),
    definitions: {
      duration: {
        description: "A number of seconds, or a string such as `250ms`, `5s`, `10m`, `2h`, `7d`.",
        anyOf: [{ type: "number", minimum: 0 }, { type: "string", pattern: "^([0-9]+(\\.[0-9]+)?|([0-9]+(\\.[0-9]+)?(ms|s|m|h|d))+)$" }],
      },
      size: {
        description: "A number of bytes, or a string such as `512KiB`, `16MiB`.",
        anyOf: [{ type: "integer", minimum: 0 }, { type: "string", pattern: "^[0-9]+(\\.[0-9]+)?\\s*([kKmMgG][iI]?[bB]|[bB])?$" }],
      },
      secretRef: {
        description: "A secret kept outside the file: `{env: NAME}`, `{file: PATH}` or `{credential: NAME}` (systemd's LoadCredential=).",
        type: "object",
        properties: { env: { type: "string" }, file: { type: "string" }, credential: { type: "string" } },
        minProperties: 1,
        maxProperties: 1,
        additionalProperties: false,
      },
    },
  };
}

export function configSchemaText(): string {
  return `${JSON.stringify(configSchema(), null, 2)}\n`;
}
