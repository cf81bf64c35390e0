// @hapi/hawk ships no types; the tests use two server functions of it.
declare module "@hapi/hawk" {
  type Credentials = { id: string; key: string; algorithm: string };
  type Artifacts = { resource: string; hash?: string; [key: string]: unknown };
  const Hawk: {
    server: {
      authenticate(
        req: { method: string; url: string; headers: Record<string, string> },
        credentialsFunc: (id: string) => Credentials | undefined,
        options?: Record<string, unknown>,
      ): Promise<{ credentials: Credentials; artifacts: Artifacts }>;
      authenticatePayload(payload: string, credentials: Credentials, artifacts: Artifacts, contentType: string): void;
    };
  };
  export default Hawk;
}

// parse-prometheus-text-format ships no types either: families of samples, values as text.
declare module "parse-prometheus-text-format" {
  type Sample = { value?: string; labels?: Record<string, string>; buckets?: Record<string, string>; count?: string; sum?: string };
  type Family = { name: string; help: string; type: string; metrics: Sample[] };
  export default function parse(text: string): Family[];
}
