// How the outbox and dead-letter panels summarise an op in one line.
import type { JsonValue, Key } from "wharf";

/** A one-line summary of a queued or dead op: the title it sets, or the patched fields. */
export function describeChange(op: { op: string; key: Key; value?: JsonValue; patch?: JsonValue }) {
  const shortKey = String(op.key).slice(0, 8);
  const fields = (op.value ?? op.patch) as Record<string, JsonValue> | undefined;
  let text = "";
  if (op.op === "put" && fields) text = `“${String(fields.title ?? "")}”${fields.poison ? " + poison" : ""}`;
  else if (op.op === "patch" && fields) text = Object.entries(fields).map(([k, v]) => `${k} = ${JSON.stringify(v)}`).join(", ");
  return (
    <>
      <code title={String(op.key)}>{shortKey}</code> {text}
    </>
  );
}
