import type { HerokuParams } from "../config/types";
import type { Backend } from "./backend";

/** An app's config vars from the Heroku Platform API (v3), only the keys `config_key` names. */
export const heroku: Backend<HerokuParams> = {
  request: (params) => ({
    url: `${params.api_url.replace(/\/+$/, "")}/apps/${encodeURIComponent(params.app)}/config-vars`,
    headers: {
      Authorization: `Bearer ${params.api_token.reveal()}`,
      Accept: "application/vnd.heroku+json; version=3",
    },
  }),
  keys: (params) => params.config_key,
};
