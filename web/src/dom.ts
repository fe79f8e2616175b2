// A tiny element builder: the panel is small enough not to need a framework.
type Attributes = Record<string, string | number | boolean | undefined>;
type Child = Node | string | null | undefined | false;

export function h<K extends keyof HTMLElementTagNameMap>(
  tag: K,
  attributes: Attributes = {},
  ...children: Child[]
): HTMLElementTagNameMap[K] {
  const element = document.createElement(tag);
  for (const [name, value] of Object.entries(attributes)) {
    if (value === true) element.setAttribute(name, "");
    else if (value !== undefined && value !== false) element.setAttribute(name, String(value));
  }
  for (const child of children) {
    if (child) element.append(child);
  }
  return element;
}

/** Shows `messages` as the items of `list` (an empty list hides itself via CSS). */
export function showMessages(list: HTMLElement, messages: readonly string[]): void {
  list.replaceChildren(...messages.map((message) => h("li", {}, message)));
}
