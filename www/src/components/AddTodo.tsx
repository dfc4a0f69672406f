// The new-todo form. "Poison" adds `poison: true`: the demo server (--reject-batches-with poison)
// refuses any push carrying it, so the op ends in the dead letters (fix it there: edit, retry).
import { useState, type FormEvent } from "react";
import { useActions } from "../actions";
import { requestBackgroundSync } from "../backgroundSync";
import type { Todo } from "../db";
import { useDemo } from "../demoContext";

export function AddTodo() {
  const { db, todos } = useDemo();
  const { run } = useActions();
  const [title, setTitle] = useState("");
  const [poison, setPoison] = useState(false);

  const submit = async (event: FormEvent) => {
    event.preventDefault();
    const text = title.trim();
    if (!text) return;
    const todo: Todo = { id: crypto.randomUUID(), title: text, done: false, createdAt: Date.now() };
    if (poison) todo.poison = true;
    if (await run(() => todos.put(todo))) {
      setTitle("");
      setPoison(false);
      void requestBackgroundSync(db);
    }
  };

  return (
    <form className="add" onSubmit={submit} autoComplete="off" data-testid="add-form">
      <input
        data-testid="title-input"
        aria-label="New todo"
        placeholder="What needs doing?"
        maxLength={200}
        value={title}
        onChange={(e) => setTitle(e.target.value)}
      />
      <label className="poison" title="Adds a `poison: true` field, which the demo server refuses: the op becomes a dead letter.">
        <input type="checkbox" data-testid="poison-checkbox" checked={poison} onChange={(e) => setPoison(e.target.checked)} />
        poison
      </label>
      <button type="submit" data-testid="add-button">
        Add
      </button>
    </form>
  );
}
