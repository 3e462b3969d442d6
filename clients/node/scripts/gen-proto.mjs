#!/usr/bin/env node
// Regenerates the client's copy of the protocol and its TypeScript types.
//
//   node scripts/gen-proto.mjs           copy ../../proto and write src/gen/
//   node scripts/gen-proto.mjs --check   fail if proto/ or src/gen/ differ from what would be written
//
// The generator is `proto-loader-gen-types` of the pinned @grpc/proto-loader (package-lock.json),
// run with the same options the client passes to the loader at run time (src/proto.ts).
import { spawnSync } from "node:child_process";
import { cpSync, mkdtempSync, readdirSync, readFileSync, rmSync, statSync } from "node:fs";
import { tmpdir } from "node:os";
import { dirname, join, relative } from "node:path";
import { fileURLToPath } from "node:url";

const here = dirname(dirname(fileURLToPath(import.meta.url)));
const repoProto = join(here, "..", "..", "proto");
const check = process.argv.includes("--check");
const PROTO = "chanlayer/v1/channel_layer.proto";

function generate(outRoot) {
  cpSync(join(repoProto, PROTO), join(outRoot, "proto", PROTO));
  const bin = join(here, "node_modules", ".bin", "proto-loader-gen-types");
  const result = spawnSync(
    bin,
    [
      "--longs=Number",
      "--enums=String",
      "--defaults",
      "--oneofs",
      "--includeComments",
      "--grpcLib=@grpc/grpc-js",
      "--inputTemplate=%s",
      "--outputTemplate=%s__Output",
      "--importFileExtension=.js",
      "-I",
      "proto",
      "-O",
      join("src", "gen"),
      PROTO,
    ],
    // Relative paths: the generated headers name the proto file, never the scratch directory.
    { cwd: outRoot, stdio: "inherit" },
  );
  if (result.status !== 0) {
    throw new Error(`proto-loader-gen-types failed with ${result.status ?? result.signal}`);
  }
}

function listFiles(root) {
  const out = [];
  const walk = (dir) => {
    for (const name of readdirSync(dir)) {
      const path = join(dir, name);
      if (statSync(path).isDirectory()) walk(path);
      else out.push(relative(root, path));
    }
  };
  walk(root);
  return out.sort();
}

function diff(expectedRoot, actualRoot) {
  const problems = [];
  for (const sub of ["proto", join("src", "gen")]) {
    const expected = listFiles(join(expectedRoot, sub));
    let actual = [];
    try {
      actual = listFiles(join(actualRoot, sub));
    } catch {
      // missing directory: every expected file is reported below
    }
    for (const file of new Set([...expected, ...actual])) {
      const a = join(expectedRoot, sub, file);
      const b = join(actualRoot, sub, file);
      let same = false;
      try {
        same = readFileSync(a).equals(readFileSync(b));
      } catch {
        same = false;
      }
      if (!same) problems.push(join(sub, file));
    }
  }
  return problems;
}

const scratch = mkdtempSync(join(tmpdir(), "chanlayer-gen-"));
try {
  generate(scratch);
  if (check) {
    const problems = diff(scratch, here);
    if (problems.length > 0) {
      console.error(`generated files are out of date (run npm run gen):\n  ${problems.join("\n  ")}`);
      process.exit(1);
    }
    console.log("generated files are up to date");
  } else {
    rmSync(join(here, "proto"), { recursive: true, force: true });
    rmSync(join(here, "src", "gen"), { recursive: true, force: true });
    cpSync(join(scratch, "proto"), join(here, "proto"), { recursive: true });
    cpSync(join(scratch, "src", "gen"), join(here, "src", "gen"), { recursive: true });
    console.log("wrote proto/ and src/gen/");
  }
} finally {
  rmSync(scratch, { recursive: true, force: true });
}
