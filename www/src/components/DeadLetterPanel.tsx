// Dead letters: ops the server refused for good (or that ran out of attempts). Each can be
// retried as it is, edited (its JSON; a retry then sends it as a new write) or discarded.
// useDeadLetters reloads the list when ops die and when the drainer's status reports a change of
// the dead letters, which comes a moment after an edit, retry or discard; so that a click shows at
// once, the panel applies the user's own actions itself (an overlay keyed by the letter's deadAt:
// a letter that dies again shows again).
import { useCallback, useState } from "react";
import type { DeadLetter, JsonValue } from "wharf";
import { useDeadLetters } from "wharf/react";
import { useActions } from "../actions";
import { useDemo } from "../demoContext";
import { relativeTime, useNow } from "../useNow";
import { describeChange } from "./describeChange";

interface Overlay {
  /** Retried or discarded here: letter id → its deadAt then. */
  gone: Record<string, number>;
  /** Edited here: letter id → its deadAt then and the new document or patch. */
  edits: Record<string, { deadAt: number; value: JsonValue }>;
}

interface LetterActions {
  gone(letter: DeadLetter): void;
  edited(letter: DeadLetter, value: JsonValue): void;
}

function useDeadLettersShown(): [DeadLetter[] | undefined, LetterActions] {
  const { db } = useDemo();
  const letters = useDeadLetters(db);
  const [overlay, setOverlay] = useState<Overlay>({ gone: {}, edits: {} });
  const gone = useCallback(
    (letter: DeadLetter) => setOverlay((o) => ({ ...o, gone: { ...o.gone, [letter.id]: letter.deadAt } })),
    [],
  );
  const edited = useCallback(
    (letter: DeadLetter, value: JsonValue) =>
      setOverlay((o) => ({ ...o, edits: { ...o.edits, [letter.id]: { deadAt: letter.deadAt, value } } })),
    [],
  );
  const shown = letters
    ?.filter((letter) => overlay.gone[letter.id] !== letter.deadAt)
    .map((letter) => {
      const edit = overlay.edits[letter.id];
      if (edit?.deadAt !== letter.deadAt) return letter;
      return { ...letter, [letter.op === "patch" ? "patch" : "value"]: edit.value, edited: true };
    });
  return [shown, { gone, edited }];
}

export function DeadLetterPanel() {
  const [letters, actions] = useDeadLettersShown();
  const now = useNow();
  if (!letters || letters.length === 0) return null;
  return (
    <section className="card dead" aria-labelledby="dead-heading" data-testid="dead-letters">
      <h2 id="dead-heading">
        Dead letters: <span data-testid="dead-letter-count">{letters.length}</span>
      </h2>
      <p className="muted">The server refused these changes; they are kept here, not lost. Fix, retry or discard them.</p>
      <ul>
        {letters.map((letter) => (
          <DeadLetterItem key={letter.id} letter={letter} now={now} actions={actions} />
        ))}
      </ul>
    </section>
  );
}

function DeadLetterItem({ letter, now, actions }: { letter: DeadLetter; now: number; actions: LetterActions }) {
  const { db } = useDemo();
  const { run } = useActions();
  const [editing, setEditing] = useState(false);
  const { lastError } = letter;
  return (
    <li data-testid="dead-letter" data-key={String(letter.key)} data-op={letter.op} data-edited={String(letter.edited)}>
      <div>
        <code>{letter.op}</code> {describeChange(letter)}
        {letter.edited && <span className="tag">edited</span>}
      </div>
      <div className="error-text" data-testid="dead-letter-error">
        {lastError.status ? `${lastError.status} ` : ""}
        {lastError.code}: {lastError.message}
      </div>
      <div className="muted">
        {letter.attempts} attempt{letter.attempts === 1 ? "" : "s"}, refused {refusedAt(letter.deadAt, now)}
      </div>
      {editing ? (
        <DeadLetterEditor letter={letter} onSaved={(value) => actions.edited(letter, value)} onDone={() => setEditing(false)} />
      ) : (
        <div className="actions">
          <button type="button" data-testid="dead-letter-retry" onClick={() => void run(() => db.deadLetters.retry(letter.id)).then((ok) => ok && actions.gone(letter))}>
            Retry
          </button>
          <button type="button" data-testid="dead-letter-edit" onClick={() => setEditing(true)} disabled={letter.op === "delete"}>
            Edit
          </button>
          <button type="button" className="danger" data-testid="dead-letter-discard" onClick={() => void run(() => db.deadLetters.discard(letter.id)).then((ok) => ok && actions.gone(letter))}>
            Discard
          </button>
        </div>
      )}
    </li>
  );
}

function refusedAt(deadAt: number, now: number): string {
  const text = relativeTime(Math.min(deadAt, now), now);
  return text === "now" ? "just now" : text;
}

/** Edits the letter's document (a put) or patch as JSON, then stores it with deadLetters.edit. */
function DeadLetterEditor({ letter, onSaved, onDone }: { letter: DeadLetter; onSaved(value: JsonValue): void; onDone(): void }) {
  const { db } = useDemo();
  const { run } = useActions();
  const [text, setText] = useState(() => JSON.stringify(letter.value ?? letter.patch ?? {}, null, 2));
  const [invalid, setInvalid] = useState<string | null>(null);

  const save = async () => {
    let parsed: JsonValue;
    try {
      parsed = JSON.parse(text);
    } catch (error) {
      setInvalid(error instanceof Error ? error.message : String(error));
      return;
    }
    setInvalid(null);
    if (await run(() => db.deadLetters.edit(letter.id, parsed))) {
      onSaved(parsed);
      onDone();
    }
  };

  return (
    <div className="editor">
      <textarea data-testid="dead-letter-editor" aria-label="Document JSON" rows={7} value={text} onChange={(e) => setText(e.target.value)} spellCheck={false} />
      {invalid && <div className="error-text">Not JSON: {invalid}</div>}
      <div className="actions">
        <button type="button" data-testid="dead-letter-save" onClick={() => void save()}>
          Save
        </button>
        <button type="button" className="link" onClick={onDone}>
          Cancel
        </button>
      </div>
    </div>
  );
}
