// The live list of todos (useQuery re-renders after every local write, pull or other tab's write).
import { useQuery } from "wharf/react";
import { BY_CREATED } from "../db";
import { useDemo } from "../demoContext";
import { TodoItem } from "./TodoItem";

export function TodoList() {
  const { todos } = useDemo();
  const items = useQuery(todos, BY_CREATED);
  if (items === undefined) return <p className="muted">Loading…</p>;
  if (items.length === 0) return <p className="muted" data-testid="empty">Nothing to do.</p>;
  return (
    <ul className="todos" data-testid="todo-list">
      {items.map((todo) => (
        <TodoItem key={todo.id} todo={todo} />
      ))}
    </ul>
  );
}
