// In-place title editor. It watches the stored document (useDoc) while open, so an edit that
// arrives meanwhile from another tab or device is pointed out instead of silently overwritten.
import { useState, type FormEvent } from "react";
import { useDoc } from "wharf/react";
import type { Todo } from "../db";
import { useDemo } from "../demoContext";

interface Props {
  todo: Todo;
  onSave(title: string): void;
  onCancel(): void;
}

export function TitleEditor({ todo, onSave, onCancel }: Props) {
  const { todos } = useDemo();
  const [started] = useState(todo.title);
  const [title, setTitle] = useState(todo.title);
  const current = useDoc(todos, todo.id);
  const changedMeanwhile = current !== undefined && current.title !== started;

  const submit = (event: FormEvent) => {
    event.preventDefault();
    const text = title.trim();
    if (text) onSave(text);
  };

  return (
    <form className="edit" onSubmit={submit}>
      <input
        autoFocus
        data-testid="title-edit-input"
        aria-label="Title"
        maxLength={200}
        value={title}
        onChange={(e) => setTitle(e.target.value)}
        onKeyDown={(e) => e.key === "Escape" && onCancel()}
      />
      <button type="submit" data-testid="save-button">
        Save
      </button>
      <button type="button" className="link" onClick={onCancel}>
        Cancel
      </button>
      {changedMeanwhile && (
        <small className="warn" data-testid="changed-meanwhile">
          changed meanwhile to “{current.title}”
        </small>
      )}
    </form>
  );
}
