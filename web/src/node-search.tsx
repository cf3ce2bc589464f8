import { useApi } from './hooks.js';
import type { NodeRow } from './pages/fleet.js';

/** Nodes a picker shows at once; typing narrows them by name (the listing's `name_prefix`). */
export const SEARCH_LIMIT = 20;

/**
 * The first nodes by name that begin with `text` (the first of the fleet when it is empty): one
 * small page, read when the text changes, so a picker costs the same in any fleet.
 */
export function useNodeSearch(text: string) {
  const q = text.trim();
  const found = useApi<{ nodes: NodeRow[]; next_cursor: string | null }>(
    `/api/nodes/?limit=${SEARCH_LIMIT}${q ? `&name_prefix=${encodeURIComponent(q)}` : ''}`,
  );
  return { nodes: found.data?.nodes, more: !!found.data?.next_cursor, error: found.error };
}

/** A node picker's search field; says when more nodes match than it shows. */
export function NodeSearchField({
  id,
  value,
  onInput,
  more,
}: {
  id: string;
  value: string;
  onInput: (text: string) => void;
  more: boolean;
}) {
  return (
    <span class="inline">
      <label for={id}>Find nodes</label>
      <input
        id={id}
        type="search"
        value={value}
        placeholder="name begins with…"
        onInput={(e) => onInput(e.currentTarget.value)}
      />
      {more ? <small class="muted">the first {SEARCH_LIMIT} shown: type more of a name</small> : null}
    </span>
  );
}
