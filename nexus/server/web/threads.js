// Threads (protocol 3), without the DOM: the thread open in the side pane,
// and the inbox of the threads this user follows. A reply in a thread that
// was not also sent to the timeline (`broadcast`) is never one of its
// buffer's messages: its root there carries the thread's summary.

import { fold } from "./state.js";

const PARTICIPANTS = 5; // names a summary keeps, the most recent first

// Whether a message lives in its thread only (not in the room's timeline).
export const inThreadOnly = (message) => Boolean(message.thread) && !message.broadcast;

// A root's `thread_summary` once `reply` is in: one more, its time the last,
// its author the most recent participant.
export function bumped(summary, reply) {
  const others = ((summary && summary.participants) || []).filter((name) => fold(name) !== fold(reply.from));
  return {
    replies: (summary ? summary.replies : 0) + 1,
    last: reply.ts,
    participants: [reply.from, ...others].slice(0, PARTICIPANTS),
  };
}

// A root's `thread_summary` once one of its replies is erased (its name
// stays among the participants until the server lists them again).
export function shrunk(summary) {
  if (!summary || summary.replies <= 1) return undefined;
  return { ...summary, replies: summary.replies - 1 };
}

// The thread shown in the pane: its root, the replies loaded (a page, the
// newest, then older ones on demand), whether this user follows it, and
// how far they have read it.
export class OpenThread {
  constructor(buffer, root, replies, more, following) {
    this.buffer = buffer;
    this.seq = root.seq;
    this.root = root;
    this.replies = new Map(replies.map((reply) => [reply.seq, reply]));
    this.more = more; // older replies are on the server
    this.following = following;
    this.readSeq = 0; // the newest reply told to the server as read
    this.version = 0; // goes up at every change: the pane is drawn again
  }

  is(buffer, seq) {
    return this.buffer === buffer && this.seq === seq;
  }

  get newest() {
    let top = 0;
    for (const seq of this.replies.keys()) if (seq > top) top = seq;
    return top;
  }

  lines() {
    return [...this.replies.keys()].sort((a, b) => a - b).map((seq) => this.replies.get(seq));
  }

  add(replies) {
    for (const reply of replies) this.replies.set(reply.seq, reply);
    this.version += 1;
  }

  // An edit, an erasure or a reaction on the root or a reply shown.
  update(message) {
    if (message.seq === this.seq) this.root = message;
    else if (this.replies.has(message.seq)) this.replies.set(message.seq, message);
    else return;
    this.version += 1;
  }
}

// The threads this user follows, as `threads` lists them (the latest reply
// first), and how many have replies unread: before the first list, the
// count that came with the login.
export class Inbox {
  constructor() {
    this.threads = [];
    this.count = 0;
  }

  set(threads) {
    this.threads = threads;
    this.count = threads.filter((entry) => entry.unread > 0).length;
  }

  // The entry of the thread of `root` (a message), or null.
  entry(root) {
    return this.threads.find((entry) => sameMessage(entry.root, root)) || null;
  }
}

// Whether two messages are the same one (the same room or pair, and seq).
function sameMessage(a, b) {
  if (a.seq !== b.seq) return false;
  if (a.room || b.room) return a.room === b.room;
  const pair = (m) => [fold(m.from), fold(m.to)].sort().join("\n");
  return pair(a) === pair(b);
}
