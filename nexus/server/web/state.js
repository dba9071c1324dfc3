// What the page shows, without the DOM or the network: buffers (rooms and
// direct conversations), their messages, counts and people, and threads
// (threads.js). Events go in through apply(); the page only reads.

import { Inbox, bumped, inThreadOnly, shrunk } from "./threads.js";

export const fold = (name) => name.toLowerCase();

// The protocol's limit on a message, in characters (code points, as the server
// counts them: an emoji is one, though two UTF-16 units).
export const MESSAGE_MAX = 4000;
export const TYPING_SHOWN_MS = 6000; // someone is shown typing this long after their last "on"
export const length = (text) => [...text].length;

// Remote text without the bidirectional controls that would let it fake its
// direction or its neighbours' (embeddings, overrides, isolates, and their pop).
const BIDI_CONTROLS = /[\u202a-\u202e\u2066-\u2069]/g;
export const clean = (text) => String(text).replace(BIDI_CONTROLS, "");

// `1 message`, `2 messages`.
export const count = (n, word) => `${n.toLocaleString("en-US")} ${word}${n === 1 ? "" : "s"}`;

export class Buffer {
  constructor(kind, name) {
    this.kind = kind; // "room" or "dm"
    this.name = name; // room name, or the other person as they spell it
    this.messages = new Map(); // seq -> message, as the server sent it
    this.notes = []; // local lines: {after: seq, text, level}
    this.topic = "";
    this.owner = null; // a room's creator (null for default rooms)
    this.private = false; // a room joined by invitation only
    this.moderators = new Set(); // folded names
    this.muted = new Set(); // folded names
    this.unread = 0;
    this.mentions = 0;
    this.more = true; // older messages may be on the server
    // Opened at a message (a page `around` it), newer messages than those
    // shown may be on the server: the page shows up to `end`, and messages
    // after it (live ones go on coming) wait until pages after it reach them.
    this.moreAfter = false;
    this.end = null;
    this.loaded = false; // a page of history has been fetched
    this.readSeq = 0; // the newest seq this user has seen
    this.firstUnread = null; // where the unread rule goes, once opened
    this.activity = 0; // a conversation's newest message (ts), or when it was opened
    this.typing = new Map(); // folded name -> {name, until}: who types here, shown until then
  }

  // Who is typing here at `now` (ms), by name; those whose time passed go.
  typists(now) {
    for (const [key, entry] of this.typing) if (entry.until <= now) this.typing.delete(key);
    return [...this.typing.values()].map((entry) => entry.name).sort((a, b) => a.localeCompare(b));
  }

  get key() {
    return this.kind === "room" ? `#${this.name}` : `@${fold(this.name)}`;
  }

  get label() {
    return this.kind === "room" ? `#${this.name}` : this.name;
  }

  // The roles of a room from a RoomInfo (protocol 2 adds them; absent: none).
  setRoles(info) {
    this.owner = info.owner || null;
    this.private = Boolean(info.private);
    this.moderators = new Set((info.moderators || []).map(fold));
    this.muted = new Set((info.muted || []).map(fold));
    this.pins = info.pins || 0; // messages pinned there (a server before pins: none)
  }

  get newest() {
    let top = 0;
    for (const seq of this.messages.keys()) if (seq > top) top = seq;
    return top;
  }

  // The newest message shown.
  get last() {
    return this.moreAfter ? this.end : this.newest;
  }

  get oldest() {
    let low = Infinity;
    for (const seq of this.messages.keys()) if (seq < low) low = seq;
    return low === Infinity ? null : low;
  }

  // Messages and notes in order: notes after the message they followed; none
  // past the newest shown.
  lines() {
    const last = this.last;
    const seqs = [...this.messages.keys()].filter((seq) => seq <= last).sort((a, b) => a - b);
    const out = [];
    let n = 0;
    const notes = this.moreAfter ? this.notes.filter((note) => note.after <= last) : this.notes;
    for (const seq of seqs) {
      while (n < notes.length && notes[n].after < seq) out.push({ note: notes[n++] });
      out.push({ message: this.messages.get(seq) });
    }
    while (n < notes.length) out.push({ note: notes[n++] });
    return out;
  }
}

// Whether `text` names `me` (as @me, or the bare name at a word boundary).
export function mentions(message, me) {
  if (Array.isArray(message.mentions)) {
    return message.mentions.some((name) => fold(name) === fold(me));
  }
  const text = fold(message.text || "");
  const name = fold(me);
  let at = text.indexOf(name);
  while (at >= 0) {
    const before = at === 0 ? "" : text[at - 1];
    const after = text[at + name.length] || "";
    if (!/[a-z0-9_-]/.test(before) && !/[a-z0-9_-]/.test(after)) return true;
    at = text.indexOf(name, at + 1);
  }
  return false;
}

export class ChatState {
  constructor(me) {
    this.me = me;
    this.rooms = new Map(); // name -> Buffer
    this.dms = new Map(); // folded name -> Buffer
    this.dmOrder = []; // folded names, in the order they opened
    this.current = null; // the Buffer shown
    this.system = new Buffer("system", "nexus"); // before any room, and for errors
    this.online = new Map(); // folded name -> {name, rooms: Set, away}
    this.members = new Map(); // room -> Set of names (as spelt): its members
    this.visible = true; // the page is being looked at
    this.protocol = 1;
    this.admins = new Set(); // folded names of the server's admins seen in profiles
    this.guests = new Set(); // folded names of the guests (no account) online now
    this.invites = new Map(); // room -> {room: RoomInfo, by}: invitations not yet taken
    this.thread = null; // the OpenThread shown in the side pane
    this.inbox = new Inbox(); // the threads this user follows
  }

  // Rooms by name, then conversations, the most recently active first.
  buffers() {
    const rooms = [...this.rooms.values()].sort((a, b) => a.name.localeCompare(b.name));
    const opened = new Map(this.dmOrder.map((key, index) => [key, index]));
    const dms = this.dmOrder
      .map((key) => this.dms.get(key))
      .sort((a, b) => b.activity - a.activity || opened.get(fold(a.name)) - opened.get(fold(b.name)));
    return [...rooms, ...dms];
  }

  find(key) {
    if (key === this.system.key) return this.system;
    return this.buffers().find((b) => b.key === key) || null;
  }

  isMe(name) {
    return fold(name) === fold(this.me);
  }

  isAdmin(name) {
    return this.admins.has(fold(name));
  }

  // Whether `name` is now a guest's (an IRC user with no account). Only the
  // people lists ask this: a message says itself whether a guest said it
  // (`guest`), since the name may since have become an account's.
  isGuest(name) {
    return this.guests.has(fold(name));
  }

  // What a Profile (login, online, whois, admin replies) or a `members` entry
  // says of its user's role, and whether it is a guest.
  learn(profile) {
    if (profile.admin) this.admins.add(fold(profile.username));
    else this.admins.delete(fold(profile.username));
    if (profile.guest) this.guests.add(fold(profile.username));
    else this.guests.delete(fold(profile.username));
  }

  inRoom(room, name) {
    return [...(this.members.get(room) || [])].some((known) => fold(known) === fold(name));
  }

  // -- buffers ---------------------------------------------------------------

  addRoom(info, history) {
    let buffer = this.rooms.get(info.name);
    if (!buffer) {
      buffer = new Buffer("room", info.name);
      this.rooms.set(info.name, buffer);
    }
    buffer.topic = info.topic || "";
    buffer.setRoles(info);
    this.invites.delete(info.name);
    if (history) {
      this.addMessages(buffer, history, { unread: false });
      buffer.loaded = true;
      if (history.length === 0) buffer.more = false;
      if (typeof info.unread === "number" && info.unread) this.setUnread(buffer, info.unread);
    }
    this.members.set(info.name, this.members.get(info.name) || new Set());
    if (this.current === null) this.current = buffer;
    return buffer;
  }

  removeRoom(name) {
    const buffer = this.rooms.get(name);
    this.rooms.delete(name);
    if (buffer && this.current === buffer) this.current = this.buffers()[0] || null;
    if (buffer && this.thread && this.thread.buffer === buffer) this.thread = null;
  }

  dmBuffer(name) {
    const key = fold(name);
    let buffer = this.dms.get(key);
    if (!buffer) {
      buffer = new Buffer("dm", name);
      this.dms.set(key, buffer);
      this.dmOrder.push(key);
    }
    return buffer;
  }

  closeDm(name) {
    const key = fold(name);
    const buffer = this.dms.get(key);
    this.dms.delete(key);
    this.dmOrder = this.dmOrder.filter((k) => k !== key);
    if (buffer && this.current === buffer) this.current = this.buffers()[0] || null;
    if (buffer && this.thread && this.thread.buffer === buffer) this.thread = null;
  }

  switchTo(buffer) {
    this.current = buffer;
    if (buffer.unread) buffer.firstUnread = this.firstUnreadSeq(buffer);
    buffer.unread = 0;
    buffer.mentions = 0;
  }

  // The server's count of unread messages: the newest `n` not from this user,
  // of which those naming them are mentions.
  setUnread(buffer, n) {
    const seqs = [...buffer.messages.keys()].sort((a, b) => a - b);
    const theirs = seqs.map((s) => buffer.messages.get(s)).filter((m) => !this.isMe(m.from) && !m.erased);
    const unread = theirs.slice(Math.max(0, theirs.length - n));
    buffer.unread = n;
    buffer.mentions = unread.filter((m) => mentions(m, this.me)).length;
    if (unread.length) buffer.readSeq = unread[0].seq - 1;
  }

  firstUnreadSeq(buffer) {
    const seqs = [...buffer.messages.keys()].sort((a, b) => a - b);
    const unread = seqs.filter((s) => !this.isMe(buffer.messages.get(s).from));
    return unread.length >= buffer.unread ? unread[unread.length - buffer.unread] : null;
  }

  // A local line; `actions` are buttons on it: [{label, line}], each running
  // the command line `line` as if typed.
  note(text, level = "info", buffer = null, actions = []) {
    const target = buffer || this.current || this.system;
    target.notes.push({ after: target.last, text, level, ts: Date.now() / 1000, actions });
    return target;
  }

  // Adds messages (any order, duplicates ignored); counts the new ones as
  // unread where the buffer is not being looked at. Returns the new ones.
  addMessages(buffer, messages, { unread = true } = {}) {
    const added = [];
    for (const message of messages) {
      const known = buffer.messages.get(message.seq);
      buffer.messages.set(message.seq, message);
      if (!known) added.push(message);
      if (buffer.kind === "dm") buffer.activity = Math.max(buffer.activity, message.ts);
    }
    if (unread) {
      const looking = this.current === buffer && this.visible;
      for (const message of added) {
        if (looking || this.isMe(message.from) || message.erased) continue;
        if (message.seq <= buffer.readSeq) continue;
        buffer.unread += 1;
        if (buffer.kind === "dm" || mentions(message, this.me)) buffer.mentions += 1;
      }
    }
    return added;
  }

  // A page opened at a message (`history` or `dms` with `around`): it takes
  // the place of what was shown (what lies between is not loaded), save the
  // newer messages, which wait for the pages after it.
  showPage(buffer, page) {
    const first = page.messages[0].seq;
    const last = page.messages[page.messages.length - 1].seq;
    for (const seq of [...buffer.messages.keys()]) if (seq <= last) buffer.messages.delete(seq);
    buffer.notes = buffer.notes.filter((note) => note.after >= first - 1);
    this.addMessages(buffer, page.messages, { unread: false });
    buffer.more = page.more;
    buffer.loaded = true;
    buffer.firstUnread = null;
    this.setEnd(buffer, last, page.more_after);
  }

  // A page `after` the newest shown; once none are newer, the page is live.
  addNewer(buffer, page) {
    this.addMessages(buffer, page.messages, { unread: false });
    const last = page.messages.length ? page.messages[page.messages.length - 1].seq : buffer.end;
    this.setEnd(buffer, last, page.more_after && page.messages.length > 0);
  }

  setEnd(buffer, last, moreAfter) {
    buffer.moreAfter = Boolean(moreAfter);
    buffer.end = buffer.moreAfter ? last : null;
  }

  // -- people ----------------------------------------------------------------

  setOnline(users) {
    this.online.clear();
    for (const user of users) {
      this.learn(user);
      this.online.set(fold(user.username), {
        name: user.username,
        rooms: new Set(user.rooms),
        away: user.away || null,
      });
      for (const room of user.rooms) this.seen(room, user.username);
    }
  }

  // A room's members as the server lists them (`members`): every one, online
  // or not, with their away text, roles and mute.
  setMembers(room, members) {
    this.members.set(room, new Set(members.map((m) => m.username)));
    const buffer = this.rooms.get(room);
    if (buffer) {
      buffer.moderators = new Set(members.filter((m) => m.role === "moderator").map((m) => fold(m.username)));
      buffer.muted = new Set(members.filter((m) => m.muted).map((m) => fold(m.username)));
      const owner = members.find((m) => m.role === "owner");
      if (owner) buffer.owner = owner.username;
    }
    for (const member of members) {
      this.learn(member);
      const key = fold(member.username);
      if (!member.online) {
        this.online.delete(key);
        continue;
      }
      const entry = this.online.get(key) || { name: member.username, rooms: new Set() };
      entry.away = member.away || null;
      entry.rooms.add(room);
      this.online.set(key, entry);
    }
  }

  seen(room, name) {
    if (!this.members.has(room)) this.members.set(room, new Set());
    const set = this.members.get(room);
    for (const known of set) if (fold(known) === fold(name)) return;
    set.add(name);
  }

  isOnline(name) {
    return this.online.has(fold(name)) || this.isMe(name);
  }

  // The people of a room: online first, then the others, each by name; with
  // their strongest role there ("owner", "admin", "moderator" or null).
  people(room) {
    const names = [...(this.members.get(room) || [])];
    if (this.rooms.has(room) && !names.some((n) => this.isMe(n))) names.push(this.me);
    const rank = (n) => (this.isOnline(n) ? 0 : 1);
    const buffer = this.rooms.get(room);
    return names
      .sort((a, b) => rank(a) - rank(b) || a.localeCompare(b))
      .map((name) => ({
        name,
        online: this.isOnline(name),
        away: this.away(name),
        role: buffer ? this.role(buffer, name) : null,
        muted: Boolean(buffer && buffer.muted.has(fold(name))),
        guest: this.isGuest(name),
      }));
  }

  role(buffer, name) {
    if (buffer.owner && fold(buffer.owner) === fold(name)) return "owner";
    if (this.isAdmin(name)) return "admin";
    return buffer.moderators.has(fold(name)) ? "moderator" : null;
  }

  forget(room, name) {
    const set = this.members.get(room);
    if (set) for (const known of set) if (fold(known) === fold(name)) set.delete(known);
  }

  away(name) {
    const entry = this.online.get(fold(name));
    return entry ? entry.away : null;
  }

  // -- events ----------------------------------------------------------------

  // Applies a server event; returns what changed: {buffer, added, alert}
  // (alert: a message naming this user or a direct message to them).
  apply(event) {
    switch (event.event) {
      case "message": {
        const buffer = this.rooms.get(event.room);
        if (!buffer) return {};
        buffer.typing.delete(fold(event.from));
        if (event.thread) return this.threadReply(buffer, event);
        const added = this.addMessages(buffer, [event]);
        const alert = added.length > 0 && !this.isMe(event.from) && mentions(event, this.me);
        return { buffer, added, alert };
      }
      case "dm": {
        const other = this.isMe(event.from) ? event.to : event.from;
        const buffer = this.dmBuffer(other);
        buffer.typing.delete(fold(event.from));
        if (event.thread) return this.threadReply(buffer, event);
        const added = this.addMessages(buffer, [event]);
        return { buffer, added, alert: added.length > 0 && !this.isMe(event.from) };
      }
      case "edited":
      case "erased":
      case "reaction":
        return this.changedMessage(event);
      case "typing": {
        const buffer = event.room ? this.rooms.get(event.room) : this.dms.get(fold(event.with));
        if (!buffer) return {};
        if (event.on) buffer.typing.set(fold(event.user), { name: event.user, until: Date.now() + TYPING_SHOWN_MS });
        else buffer.typing.delete(fold(event.user));
        return { buffer, typing: true };
      }
      case "read": {
        if (event.thread) return { inbox: true }; // a thread read elsewhere: the inbox is asked again
        const buffer = event.room ? this.rooms.get(event.room) : this.dms.get(fold(event.with));
        if (buffer) {
          buffer.readSeq = Math.max(buffer.readSeq, event.seq);
          if (event.seq >= buffer.newest) {
            buffer.unread = 0;
            buffer.mentions = 0;
          }
        }
        return { buffer: null };
      }
      case "joined": {
        this.seen(event.room, event.user);
        if (event.guest) this.guests.add(fold(event.user));
        else this.guests.delete(fold(event.user));
        // Only someone online joins; one met for the first time here (a guest
        // who came before sharing a room with this user) had no `presence`.
        if (!this.online.has(fold(event.user))) {
          this.online.set(fold(event.user), { name: event.user, rooms: new Set([event.room]), away: null });
        }
        const buffer = this.rooms.get(event.room);
        const who = `${event.user}${event.guest ? " (guest)" : ""}`;
        if (buffer && !this.isMe(event.user)) this.note(`${who} joined`, "join", buffer);
        return { buffer };
      }
      case "left": {
        this.forget(event.room, event.user);
        const buffer = this.rooms.get(event.room);
        if (buffer) buffer.moderators.delete(fold(event.user)); // leaving ends the role
        if (buffer && !this.isMe(event.user)) this.note(`${event.user} left`, "part", buffer);
        return { buffer };
      }
      case "topic": {
        const buffer = this.rooms.get(event.room);
        if (buffer) {
          buffer.topic = event.topic;
          const said = event.topic ? `set the topic: ${event.topic}` : "cleared the topic";
          this.note(`${event.by} ${said}`, "info", buffer);
        }
        return { buffer };
      }
      case "room_created":
        return {};
      case "room_deleted": {
        this.invites.delete(event.room);
        const buffer = this.rooms.get(event.room);
        if (buffer) {
          this.removeRoom(event.room);
          const said = this.isMe(event.by) ? `you deleted #${event.room}` : `#${event.room} was deleted by ${event.by}`;
          this.note(said, "info", this.current);
        }
        return { buffer: this.current };
      }
      case "presence": {
        const key = fold(event.user);
        // Someone in none of the lists: a new account, which registering
        // makes a member of the default rooms without `joined`.
        const unknown = event.online && ![...this.rooms.keys()].some((room) => this.inRoom(room, event.user));
        if (event.online) {
          const entry = this.online.get(key) || { name: event.user, rooms: new Set() };
          entry.away = event.away || null;
          this.online.set(key, entry);
        } else {
          this.online.delete(key);
          if (event.guest) this.guests.delete(key); // a guest offline is gone for good
        }
        return { people: true, unknown }; // unknown: the member lists are asked again
      }
      case "room_updated":
        return this.roomUpdated(event);
      case "pinned": {
        const buffer = this.rooms.get(event.room);
        if (!buffer) return {};
        buffer.pins = Math.max(0, buffer.pins + (event.on ? 1 : -1));
        const verb = event.on ? "pinned" : "unpinned";
        this.note(`${event.by} ${verb} #${event.room}/${event.seq}`, "info", buffer);
        return { buffer, pins: true };
      }
      case "kicked":
        return this.kicked(event);
      case "muted": {
        const buffer = this.rooms.get(event.room);
        if (!buffer) return {};
        const me = this.isMe(event.user);
        if (event.on) buffer.muted.add(fold(event.user));
        else buffer.muted.delete(fold(event.user));
        const said = `${event.on ? "muted" : "unmuted"} ${me ? "you" : event.user}`;
        this.note(`${event.by} ${said} in #${event.room}`, "mod", buffer);
        return { buffer };
      }
      case "invited": {
        const room = event.room.name;
        if (this.rooms.has(room)) return {};
        this.invites.set(room, { room: event.room, by: event.by });
        const text = invitation(event);
        this.note(text, "invite", this.current, [{ label: `join #${room}`, line: `/join ${room}` }]);
        return { buffer: this.current, invite: { text, by: event.by } };
      }
      default:
        return {};
    }
  }

  // A reply in a thread: in the pane if it is open there, in the summary of
  // its root, and in the timeline too when it was sent there as well.
  threadReply(buffer, message) {
    const open = this.thread && this.thread.is(buffer, message.thread) ? this.thread : null;
    const root = buffer.messages.get(message.thread);
    const known = open !== null && open.replies.has(message.seq);
    if (root && !known) buffer.messages.set(root.seq, { ...root, thread_summary: bumped(root.thread_summary, message) });
    if (open && !known) {
      open.add([message]);
      open.root = buffer.messages.get(open.seq) || { ...open.root, thread_summary: bumped(open.root.thread_summary, message) };
    }
    const added = message.broadcast ? this.addMessages(buffer, [message]) : [];
    const mine = this.isMe(message.from);
    const alert = !known && !mine && (buffer.kind === "dm" || mentions(message, this.me));
    return { buffer, added, changed: message.thread, thread: open !== null, reply: message, alert };
  }

  // An edit, an erasure or a reaction: the message as it is now, wherever it
  // is shown (a reply erased counts out of its root's summary).
  changedMessage(event) {
    const message = event.message;
    const buffer = this.bufferOf(message);
    if (this.thread && this.thread.buffer === buffer) this.thread.update(message);
    if (!buffer) return { thread: true };
    if (!inThreadOnly(message)) {
      if (buffer.messages.has(message.seq)) buffer.messages.set(message.seq, message); // else not loaded
      return { buffer, changed: message.seq, thread: true };
    }
    const root = buffer.messages.get(message.thread);
    if (event.event === "erased" && root) {
      const now = { ...root, thread_summary: shrunk(root.thread_summary) };
      buffer.messages.set(root.seq, now);
      if (this.thread && this.thread.is(buffer, root.seq)) this.thread.update(now);
      return { buffer, changed: root.seq, thread: true };
    }
    return { thread: true };
  }

  // Roles changed: a line for each moderator named or dropped.
  roomUpdated(event) {
    const info = event.room;
    const buffer = this.rooms.get(info.name);
    if (!buffer) return {};
    const before = buffer.moderators;
    buffer.setRoles(info);
    for (const name of info.moderators || []) {
      if (before.has(fold(name))) continue;
      this.note(`${event.by} made ${name} a moderator of #${info.name}`, "mod", buffer);
    }
    const spelt = new Map([...(this.members.get(info.name) || [])].map((name) => [fold(name), name]));
    for (const key of [...before].sort()) {
      if (buffer.moderators.has(key)) continue;
      const name = this.isMe(key) ? this.me : spelt.get(key) || key;
      this.note(`${event.by} took the moderator role of ${name} in #${info.name}`, "mod", buffer);
    }
    return { buffer };
  }

  // Someone was kicked or banned; when it is this user, the room goes and the
  // reason shows where they are now.
  kicked(event) {
    const me = this.isMe(event.user);
    const verb = event.banned ? "banned" : "kicked";
    const why = event.reason ? `: ${event.reason}` : " (no reason given)";
    const text = `${me ? "you were" : `${event.user} was`} ${verb} from #${event.room} by ${event.by}${why}`;
    if (me) {
      this.removeRoom(event.room);
      const again = event.banned ? [] : [{ label: `join #${event.room} again`, line: `/join ${event.room}` }];
      this.note(text, "error", this.current || this.system, again);
      return { buffer: this.current };
    }
    this.forget(event.room, event.user);
    const buffer = this.rooms.get(event.room);
    if (!buffer) return {};
    buffer.moderators.delete(fold(event.user));
    this.note(text, "mod", buffer);
    return { buffer };
  }

  bufferOf(message) {
    if (message.room) return this.rooms.get(message.room) || null;
    const other = this.isMe(message.from) ? message.to : message.from;
    return this.dms.get(fold(other)) || null;
  }
}

// `bob invited you to #den (private)`: what an `invited` event says.
function invitation(event) {
  return `${event.by} invited you to #${event.room.name}${event.room.private ? " (private)" : ""}`;
}
