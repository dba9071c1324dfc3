// Building the page's nodes from remote text: always as text (textContent,
// text nodes), never parsed as HTML, and cleaned of the bidirectional
// controls that could make it read in another order.

import { clean } from "./state.js";

export function el(tag, className, text) {
  const node = document.createElement(tag);
  if (className) node.className = className;
  if (text !== undefined && text !== null) node.textContent = clean(text);
  return node;
}

export const textNode = (text) => document.createTextNode(clean(text));
