// What the demo tests start from: the demo PWA built (www/tools/build-demo.mjs: npm pack pkg/,
// install the tarball into www/, vite build; skipped when nothing changed) and the reference
// server serving www/dist with the demo's own flags (scripts/demo.sh runs the same ones): fault
// injection configured but paused, pushes carrying `poison` refused while it is on.

import { buildDemo, DIST, SERVER_FLAGS } from "../../www/tools/build-demo.mjs";
import { assertPkgBuilt } from "./helpers.mjs";
import { startSyncServer } from "./sync-server.mjs";

export { DIST };

/** Builds the demo if needed, then starts the server on a free port; close() stops it. */
export async function startDemoServer() {
  assertPkgBuilt();
  await buildDemo();
  // startSyncServer always passes --faults itself.
  return startSyncServer(
    SERVER_FLAGS.filter((flag) => flag !== "--faults"),
    { www: DIST },
  );
}
