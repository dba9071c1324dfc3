// Typing: telling the server while the user types, and the line under the
// input that says who else is typing in the buffer shown.

export const TYPING_EVERY_MS = 3000; // an "on" again while typing goes on (the others show it 6 s)
export const TYPING_TOLD_MS = 1000; // the server's: it tells one "on" a second for a place

// Says `typing` as the user types in a buffer: "on" at the first key and
// again every TYPING_EVERY_MS, "off" once the input is empty again or the
// user moves to another buffer; nothing for commands or edits. A sent
// message needs no "off": the server ends the typing itself. A new
// message's "on" waits for the first key TYPING_TOLD_MS after the last one
// told there: the server would not pass an earlier one on, even with an
// "off" or a message between.
export class TypingSender {
  constructor(request) {
    this.request = request; // (cmd, args) -> Promise
    this.buffer = null; // where an "on" was last told, while it holds
    this.told = new Map(); // buffer -> when its last "on" went
    this.unsupported = false; // the server has no `typing`: never ask again
  }

  typed(buffer, text, editing, now = Date.now()) {
    const typing = Boolean(buffer && buffer.kind !== "system" && !editing && text.trim() && !text.startsWith("/"));
    if (this.buffer && (!typing || this.buffer !== buffer)) this.tell(this.buffer, false);
    if (!typing) return;
    const last = this.told.get(buffer);
    const wait = this.buffer === buffer ? TYPING_EVERY_MS : TYPING_TOLD_MS;
    if (last === undefined || now - last >= wait) {
      this.tell(buffer, true);
      for (const [other, at] of this.told) if (now - at >= TYPING_EVERY_MS) this.told.delete(other);
      this.told.set(buffer, now);
    }
  }

  // The message went: the server told the others the typing is over.
  sent() {
    this.buffer = null;
  }

  tell(buffer, on) {
    this.buffer = on ? buffer : null;
    if (this.unsupported) return;
    const where = buffer.kind === "room" ? { room: buffer.name } : { with: buffer.name };
    this.request("typing", { ...where, on }).catch((error) => {
      if (error && error.code === "unknown_command") this.unsupported = true;
    });
  }
}

// "ana is typing…", "ana and bob are typing…", or for more, "several people
// are typing…"; "" for nobody.
export function typingLine(names) {
  if (names.length === 0) return "";
  if (names.length === 1) return `${names[0]} is typing…`;
  if (names.length === 2) return `${names[0]} and ${names[1]} are typing…`;
  return "several people are typing…";
}
