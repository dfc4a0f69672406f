// Minimal app, Wharf: open with `sync` as an app sets it (this origin's server, every other option
// Wharf's default: both directions, the live socket), one write, sync.
import { Wharf } from "../../../pkg/index.js";
import { doc, fail, finish, mark, params } from "./_report.js";

(async () => {
  const db = await Wharf.open({
    name: params.get("name") ?? "cold-wharf",
    collections: [{ name: "todos", keyPath: "id", indexes: [{ name: "by_n", keyPath: "n" }] }],
    sync: { url: location.origin },
  });
  mark("openMs");
  await db.collection("todos").put(doc());
  mark("writeMs");
  await db.sync();
  mark("syncedMs");
  finish();
})().catch(fail);
