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
