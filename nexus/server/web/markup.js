// Protocol 3's formatting subset (docs/protocol.md, "Extension: formatting"):
// text -> blocks of spans, as nexus/protocol/markup.py parses it, for the page
// to build as DOM nodes. Nothing of the text is ever HTML.

const FENCE = /^ {0,3}```\s*([\w+#.-]*)\s*$/;
const ITEM = /^(-|\d{1,9}\.) ([\s\S]*)$/;
const URL = /https?:\/\/[^\s<>]+[^\s<>.,;:!?"')\]]/y;
const MESSAGE = /#([a-z0-9][a-z0-9_-]{0,31})\/([1-9]\d{0,17})\b/y;
const LINK = /\[([^\]\n]+)\]\(((?:https?:\/\/|mailto:)[^\s()]+)\)/y;
const ESCAPABLE = new Set("\\`*_~[]()#>-.!|{}+");
const DELIMITERS = [
  ["**", "bold"],
  ["~~", "strike"],
  ["*", "italic"],
  ["_", "italic"],
];

const isAlnum = (char) => /[\p{L}\p{N}]/u.test(char);
const isSpace = (char) => /\s/.test(char);
const wordStart = (text, i) => i === 0 || !(isAlnum(text[i - 1]) || text[i - 1] === "_");

// [{kind: "line"|"quote"|"item"|"code", spans, marker, lang}], in order.
export function parse(text) {
  const blocks = [];
  const lines = text.split("\n");
  for (let i = 0; i < lines.length; i++) {
    const line = lines[i];
    const fence = FENCE.exec(line);
    if (fence) {
      let end = i + 1;
      while (end < lines.length && !FENCE.test(lines[end])) end++;
      blocks.push({ kind: "code", spans: [{ kind: "code", text: lines.slice(i + 1, end).join("\n") }], lang: fence[1] });
      i = end;
      continue;
    }
    const item = ITEM.exec(line);
    if (line.startsWith(">")) blocks.push({ kind: "quote", spans: spans(line.slice(1).replace(/^ /, "")) });
    else if (item) blocks.push({ kind: "item", spans: spans(item[2]), marker: item[1] });
    else blocks.push({ kind: "line", spans: spans(line) });
  }
  return blocks;
}

// One line's spans: {kind: "text"|"code"|"link"|"message", text, styles (a Set), url, room, seq}.
export function spans(text, styles = new Set()) {
  const out = [];
  let plain = "";
  const flush = () => {
    if (plain) out.push({ kind: "text", text: plain, styles });
    plain = "";
  };
  const at = (pattern, i) => {
    pattern.lastIndex = i;
    return pattern.exec(text);
  };
  let i = 0;
  while (i < text.length) {
    const char = text[i];
    if (char === "\\" && i + 1 < text.length && ESCAPABLE.has(text[i + 1])) {
      plain += text[i + 1];
      i += 2;
      continue;
    }
    if (char === "`") {
      const end = text.indexOf("`", i + 1);
      if (end > i + 1) {
        flush();
        out.push({ kind: "code", text: text.slice(i + 1, end), styles: new Set() });
        i = end + 1;
        continue;
      }
    }
    let match;
    if (char === "[" && (match = at(LINK, i))) {
      flush();
      out.push({ kind: "link", text: match[1], url: match[2], styles });
      i += match[0].length;
      continue;
    }
    if ((char === "h" || char === "H") && wordStart(text, i) && (match = at(URL, i))) {
      flush();
      out.push({ kind: "link", text: match[0], url: match[0], styles });
      i += match[0].length;
      continue;
    }
    if (char === "#" && wordStart(text, i) && (match = at(MESSAGE, i))) {
      flush();
      out.push({ kind: "message", text: match[0], room: match[1], seq: Number(match[2]), styles });
      i += match[0].length;
      continue;
    }
    const styled = opened(text, i);
    if (styled) {
      const [delimiter, style, end] = styled;
      flush();
      out.push(...spans(text.slice(i + delimiter.length, end), new Set([...styles, style])));
      i = end + delimiter.length;
      continue;
    }
    plain += char;
    i += 1;
  }
  flush();
  return out;
}

// [delimiter, style, where the run closes] for a run opening at i, or null.
function opened(text, i) {
  for (const [delimiter, style] of DELIMITERS) {
    if (!text.startsWith(delimiter, i)) continue;
    const start = i + delimiter.length;
    if (start >= text.length || isSpace(text[start])) return null;
    const single = delimiter === "*" || delimiter === "_";
    if (single && !wordStart(text, i)) return null; // inside a word: a character
    let end = start;
    for (;;) {
      end = text.indexOf(delimiter, end + 1);
      if (end < 0) return null;
      if (isSpace(text[end - 1]) || text[end - 1] === "\\") continue;
      const after = end + delimiter.length;
      if (single && after < text.length && isAlnum(text[after])) continue;
      if (delimiter === "*" && text.startsWith("**", end)) {
        end += 1;
        continue;
      }
      return [delimiter, style, end];
    }
  }
  return null;
}
