/** Small helpers shared by the constructs. */

/**
 * `props` without its `undefined` values, so that `{ ...defaults, ...definedProps(props) }` lets
 * every prop the user gave win and every prop they left out fall back to its default.
 */
export function definedProps<T extends object>(props: T): T {
  return Object.fromEntries(Object.entries(props).filter(([, v]) => v !== undefined)) as T;
}

/** `incoming_supplier-2` → `IncomingSupplier2`: a name usable in construct ids and output ids. */
export function pascalCase(name: string): string {
  return name
    .split(/[^A-Za-z0-9]+/)
    .filter(Boolean)
    .map((part) => part[0]!.toUpperCase() + part.slice(1))
    .join('');
}
