// Minimal app, PouchDB (pouchdb-browser): open, one put, a one-shot replication to the
// CouchDB-compatible server named by ?couch=.
import PouchDB from "pouchdb-browser";
import { doc, fail, finish, mark, params } from "./_report.js";

(async () => {
  const db = new PouchDB(params.get("name") ?? "cold-pouchdb");
  await db.info(); // PouchDB opens lazily: this waits for the IndexedDB database
  mark("openMs");
  const value = doc();
  await db.put({ _id: value.id, ...value });
  mark("writeMs");
  const couch = params.get("couch");
  if (couch) await PouchDB.replicate(db, `${couch}/cold-app`);
  mark("syncedMs");
  finish();
})().catch(fail);
