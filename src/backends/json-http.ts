import { revealed } from "../config/secret";
import type { JsonHttpParams } from "../config/types";
import type { Backend } from "./backend";

/** `GET url`: the JSON body, or the part `select` points at, or only its named top-level keys. */
export const jsonHttp: Backend<JsonHttpParams> = {
  request: (params) => ({
    url: params.url,
    headers: Object.fromEntries([...(params.headers ?? [])].map(([name, value]) => [name, value.reveal()])),
  }),
  keys: (params) => params.field,
  select: (params) => revealed(params.select),
};
