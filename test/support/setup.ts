/** Preloaded by bunfig.toml for every `bun test`: hooks for the whole run, not one file. */
import { afterAll } from "bun:test";
import { removeTempDirs } from "./temp";

afterAll(removeTempDirs);
