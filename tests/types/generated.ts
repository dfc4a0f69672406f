// The objects users get are wasm-bindgen's generated classes, typed by the hand-written
// index.d.ts. This file stops compiling if a generated class loses a method, renames one, or
// changes a signature in a way the declared interface cannot accept.
import type {
  Collection as GeneratedCollection,
  Database as GeneratedDatabase,
  DeadLetters as GeneratedDeadLetters,
  Outbox as GeneratedOutbox,
} from "../../pkg/wharf_wasm.js";
import type { Collection, Database, DeadLetters, Outbox } from "../../pkg/index.js";

interface Todo {
  id: string;
  title: string;
}

export const asDatabase = (generated: GeneratedDatabase): Database => generated;
export const asCollection = (generated: GeneratedCollection): Collection<Todo> => generated;
export const asOutbox = (generated: GeneratedOutbox): Outbox => generated;
export const asDeadLetters = (generated: GeneratedDeadLetters): DeadLetters => generated;
