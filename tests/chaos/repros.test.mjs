// Regression tests for the data-loss bugs the chaos suite found: each reproduction in repros/
// builds its scenario deterministically against the real server and Chromium and exits 1 when
// the bug is back (0 when the user's writes survive). Run: node --test tests/chaos/
// (needs pkg/ and target/debug/wharf-server, as scripts/test.sh builds them).

import assert from "node:assert/strict";
import { spawnSync } from "node:child_process";
import { readdirSync } from "node:fs";
import path from "node:path";
import { test } from "node:test";
import { fileURLToPath } from "node:url";

const REPROS = path.join(path.dirname(fileURLToPath(import.meta.url)), "repros");
const scripts = readdirSync(REPROS).filter((name) => name.endsWith(".mjs") && name !== "common.mjs").sort();

test("every reproduction is here", () => {
  assert.deepEqual(scripts, [
    "dead-letter-retry-behind-conflict.mjs",
    "dead-letter-retry-coalesced.mjs",
    "dead-letter-retry-duplicate.mjs",
    "dead-letter-retry-landed-behind-conflict.mjs",
    "dead-letter-retry-patch-resolved-as-delete.mjs",
    "dead-letter-retry-resolved-twice.mjs",
    "dead-letter-retry-stale-local.mjs",
    "redundant-delete.mjs",
    "zombie-push.mjs",
  ]);
});

for (const script of scripts) {
  test(`fixed: ${script.replace(/\.mjs$/, "")}`, () => {
    const run = spawnSync(process.execPath, [path.join(REPROS, script)], { encoding: "utf8", timeout: 120_000 });
    const output = `${run.stdout}${run.stderr}`;
    assert.equal(run.signal, null, `timed out or killed:\n${output}`);
    assert.match(run.stdout, /^not reproduced$/m, output);
    assert.equal(run.status, 0, output);
  });
}
