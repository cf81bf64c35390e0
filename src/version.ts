import pkg from "../package.json" with { type: "json" };

/** Bundled into the binary at build time: the binary never reads package.json at run time. */
export const VERSION: string = pkg.version;
