// One todo: toggle done (a patch), edit the title in place (a patch), delete.
import { useState } from "react";
import { useActions } from "../actions";
import { requestBackgroundSync } from "../backgroundSync";
import type { Todo } from "../db";
import { useDemo } from "../demoContext";
import { TitleEditor } from "./TitleEditor";

export function TodoItem({ todo }: { todo: Todo }) {
  const { db, todos } = useDemo();
  const { run } = useActions();
  const [editing, setEditing] = useState(false);

  const write = async (action: () => Promise<void>) => {
    if (await run(action)) void requestBackgroundSync(db);
  };

  return (
    <li className={todo.done ? "todo done" : "todo"} data-testid="todo-item" data-id={todo.id}>
      <input
        type="checkbox"
        data-testid="todo-done"
        aria-label={`Done: ${todo.title}`}
        checked={todo.done}
        onChange={(e) => void write(() => todos.patch(todo.id, { done: e.target.checked }))}
      />
      {editing ? (
        <TitleEditor
          todo={todo}
          onSave={(title) => void write(() => todos.patch(todo.id, { title })).then(() => setEditing(false))}
          onCancel={() => setEditing(false)}
        />
      ) : (
        <span className="title" data-testid="todo-title" onDoubleClick={() => setEditing(true)}>
          {todo.title}
        </span>
      )}
      {todo.poison && <span className="tag" title="The demo server refuses this field">poison</span>}
      {!editing && (
        <button type="button" className="link" data-testid="edit-button" onClick={() => setEditing(true)}>
          Edit
        </button>
      )}
      <button type="button" className="link danger" data-testid="delete-button" onClick={() => void write(() => todos.delete(todo.id))}>
        Delete
      </button>
    </li>
  );
}
