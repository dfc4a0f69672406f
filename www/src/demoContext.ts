// The open database, handed to every panel through React context (App renders them only once it is open).
import { createContext, useContext } from "react";
import type { DemoDatabase } from "./useDatabase";

export const DemoContext = createContext<DemoDatabase | null>(null);

/** The open database and its todos collection (only rendered once it is open). */
export function useDemo(): DemoDatabase {
  const demo = useContext(DemoContext);
  if (!demo) throw new Error("useDemo outside DemoContext");
  return demo;
}
