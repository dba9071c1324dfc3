// Staying connected: log in (password once, then the token), rejoin the
// rooms, fill what was missed while away, reconnect by itself with backoff;
// and the outbox: text typed is sent in order, waits while offline, and what
// the server refuses goes back to the page. The page (app.js) gets told when
// to redraw; it never talks to the socket.

import { address } from "./commands.js";
import { Connection, ConnectionClosed, ServerError, serverUrl } from "./connection.js";
import { Files } from "./files.js";
import { ChatState, count, fold } from "./state.js";
import { OpenThread } from "./threads.js";

const STORE_KEY = "nexus.login";
const BACKOFF_MS = [500, 1000, 2000, 4000, 8000, 15000];
const GAP_PAGES = 20; // pages fetched at most to fill one room's gap
const PAGE = 100;
const PEOPLE_DELAY_MS = 250; // arrivals gathered into one round of `members` requests
const CONVERSATIONS = 500; // the most `conversations` lists
const AROUND = 50; // the page opened at a message: this many, centred on it
const THREADS = 100; // the followed threads the inbox lists
const INBOX_DELAY_MS = 250; // replies arriving together: the inbox asked once

const sleep = (ms) => new Promise((resolve) => setTimeout(resolve, ms));
const where = (item) => (item.kind === "room" ? `#${item.target}` : item.target);

// Whether `item`, cut off while being sent, arrived anyway: a message of mine
// with its text (and its files), newer than the newest there when it was sent
// (in the timeline, or in the thread open in the pane).
function landed(state, buffer, item) {
  const files = (item.extra.files || []).join();
  const open = state.thread && state.thread.buffer === buffer ? [...state.thread.replies.values()] : [];
  for (const message of [...buffer.messages.values(), ...open]) {
    if (message.seq <= item.after || !state.isMe(message.from) || message.text !== item.text) continue;
    if ((message.files || []).map((file) => file.id).join() === files) return true;
  }
  return false;
}

// The remembered login: localStorage ("remember me") or this tab's sessionStorage.
export const saved = {
  load() {
    for (const store of [sessionStorage, localStorage]) {
      try {
        const value = JSON.parse(store.getItem(STORE_KEY));
        if (value && value.username && value.token) return { ...value, remember: store === localStorage };
      } catch {
        // not ours, or damaged: ignore it
      }
    }
    return null;
  },
  save(username, token, remember) {
    this.clear();
    (remember ? localStorage : sessionStorage).setItem(STORE_KEY, JSON.stringify({ username, token }));
  },
  clear() {
    localStorage.removeItem(STORE_KEY);
    sessionStorage.removeItem(STORE_KEY);
  },
};

export class Session {
  // ui: {changed(), status(text, level), alert(buffer or null, message), loggedOut(reason),
  //      giveBack(item): puts refused text back in the input, true if it could}
  constructor(ui) {
    this.ui = ui;
    this.state = null;
    this.conn = null;
    this.token = null;
    this.remember = false;
    this.attempt = 0; // failed attempts in a row: the backoff
    this.attempts = 0; // attempts made: a failure of one superseded is not retried
    this.timer = null;
    this.stopped = false;
    this.motd = "";
    this.readTimers = new Map();
    this.peopleTimer = null;
    this.inboxTimer = null;
    this.outbox = []; // {kind, target, text, extra, typed, after, done}: oldest first
    this.ready = false; // logged in with the rooms restored: the outbox may go
    this.sending = false;
    this.files = null; // Files, when the server's hello offers them
  }

  // Logs in from the form (or a saved token); resolves once in, rejects with
  // the reason (ServerError, ConnectionClosed) for the form to show.
  async start({ username, password = null, token = null, register = false, remember = false }) {
    this.remember = remember;
    this.stopped = false;
    if (token) this.token = token; // a token login's reply carries none: reconnecting needs this one
    const args = register ? { username, password } : { username, password, token };
    await this.connect(register ? "register" : "login", args);
  }

  async connect(cmd, args) {
    const conn = new Connection(serverUrl(window.location), {
      onEvent: (event) => this.event(event),
      onClose: (refusal) => this.closed(conn, refusal),
    });
    this.conn = conn;
    const hello = await conn.open();
    this.motd = hello.motd;
    this.files = hello.files ? new Files(hello.files, () => [this.state.me, this.token]) : null;
    const reply = await conn.request(cmd, args);
    const me = reply.user.username;
    if (this.state === null || !this.state.isMe(me)) this.state = new ChatState(me);
    this.state.protocol = hello.protocol;
    this.state.learn(reply.user);
    if (reply.token) {
      this.token = reply.token;
      saved.save(me, reply.token, this.remember);
    }
    this.attempt = 0;
    await this.restore(conn, reply);
    this.markRead(this.state.current);
    this.ui.status("online", "ok");
    this.ready = conn === this.conn && !conn.closed;
    this.ui.changed();
    this.send();
  }

  // After a login: the rooms as the server has them, with what was missed.
  async restore(conn, reply) {
    const state = this.state;
    const first = state.rooms.size === 0 && state.dms.size === 0;
    const names = new Set(reply.rooms);
    for (const name of [...state.rooms.keys()]) if (!names.has(name)) state.removeRoom(name);
    const online = conn.request("online");
    // Every conversation, read or not; a server without the command is told
    // only of those with unread messages (login's `unread`).
    const conversations = conn.request("conversations", { limit: CONVERSATIONS }).catch((error) => {
      if (error.code === "unknown_command") return { conversations: [] };
      throw error;
    });
    const joins = reply.rooms.map((room) => conn.request("join", { room }));
    // All asked at once and awaited in turn: if the connection drops, the
    // first await throws and the others' failures are this one's, not errors.
    for (const asked of [online, conversations, ...joins]) asked.catch(() => {});
    let missed = 0;
    for (const join of joins) {
      const { room, history } = await join;
      const buffer = state.rooms.get(room.name);
      if (buffer && buffer.moreAfter) {
        state.addRoom(room);
        state.addMessages(buffer, history); // the newest, until the pages after what is shown reach them
      } else if (buffer && buffer.messages.size) {
        state.addRoom(room); // its topic and roles as they are now
        missed += await this.fillGap(conn, buffer, history);
      } else {
        state.addRoom(room, history);
        if (buffer) missed += history.length; // a room known, and empty before
      }
    }
    for (const info of reply.invited || []) {
      if (!state.rooms.has(info.name)) state.invites.set(info.name, { room: info, by: null }); // made while away
    }
    const unread = reply.unread || {};
    if (first) {
      for (const [room, n] of Object.entries(unread.rooms || {})) {
        const buffer = state.rooms.get(room);
        if (buffer) state.setUnread(buffer, n);
      }
    }
    if (typeof unread.threads === "number") state.inbox.count = unread.threads;
    if (state.protocol >= 3) this.refreshInbox();
    for (const [user, n] of Object.entries(unread.dms || {})) {
      const buffer = state.dmBuffer(user);
      if (!buffer.loaded) {
        buffer.unread = n; // every direct message to you counts as a mention
        buffer.mentions = n;
      }
    }
    for (const conversation of (await conversations).conversations) {
      const buffer = state.dmBuffer(conversation.with);
      buffer.activity = Math.max(buffer.activity, conversation.ts);
      if (!buffer.loaded) {
        buffer.unread = conversation.unread;
        buffer.mentions = conversation.unread;
      }
    }
    for (const buffer of state.dms.values()) {
      if (buffer.loaded && !buffer.moreAfter) missed += await this.fillDmGap(conn, buffer);
    }
    state.setOnline((await online).users);
    await this.loadMembers([...state.rooms.keys()]);
    if (first) {
      state.switchTo(state.rooms.get("general") || state.buffers()[0] || state.system);
      state.note(`welcome, ${state.me}: /help lists the commands`);
    } else {
      const filled = missed ? `: ${count(missed, "missed message")} filled in` : "";
      state.note(`reconnected${filled}`, "info", state.current);
    }
    if (state.current && state.current.kind === "dm" && !state.current.loaded) {
      await this.loadLatest(state.current);
    }
    if (state.thread) await this.refreshThread(conn, state.thread);
  }

  // The pane's thread as it is now, with the replies said meanwhile; closed
  // if it is no longer there to read.
  async refreshThread(conn, thread) {
    try {
      const reply = await conn.request("thread", { ...address(thread.buffer, thread.seq), limit: PAGE });
      thread.root = reply.root;
      thread.add(reply.messages);
    } catch (error) {
      if (!(error instanceof ServerError)) throw error;
      if (this.state.thread === thread) this.state.thread = null;
    }
  }

  // Merges a room's newest page; pages back until it meets what was known.
  // Returns how many messages were new.
  async fillGap(conn, buffer, history) {
    const known = buffer.newest;
    let added = this.state.addMessages(buffer, history).length;
    let oldest = history.length ? history[0].seq : null;
    for (let page = 0; page < GAP_PAGES && oldest !== null && oldest > known + 1; page++) {
      const reply = await conn.request("history", { room: buffer.name, limit: PAGE, before: oldest });
      if (!reply.messages.length) break;
      added += this.state.addMessages(buffer, reply.messages).length;
      oldest = reply.messages[0].seq;
      if (!reply.more) break;
    }
    return added;
  }

  async fillDmGap(conn, buffer) {
    const known = buffer.newest;
    let before = null;
    let added = 0;
    for (let page = 0; page < GAP_PAGES; page++) {
      const reply = await conn.request("dms", { with: buffer.name, limit: PAGE, before });
      added += this.state.addMessages(buffer, reply.messages).length;
      if (!reply.messages.length || !reply.more || reply.messages[0].seq <= known + 1) break;
      before = reply.messages[0].seq;
    }
    return added;
  }

  closed(conn, refusal) {
    if (conn === this.conn) this.ready = false;
    if (conn !== this.conn || this.stopped || this.state === null) return;
    if (refusal && (refusal.code === "auth_required" || refusal.code === "suspended")) {
      this.logout(refusal.message);
      return;
    }
    this.scheduleReconnect();
  }

  scheduleReconnect() {
    clearTimeout(this.timer);
    const delay = BACKOFF_MS[Math.min(this.attempt, BACKOFF_MS.length - 1)];
    const jittered = delay / 2 + Math.random() * delay / 2;
    this.attempt += 1;
    this.ui.status(`disconnected: reconnecting in ${(jittered / 1000).toFixed(1)} s`, "warn");
    this.timer = setTimeout(() => this.reconnect(), jittered);
  }

  async reconnect() {
    clearTimeout(this.timer);
    if (this.stopped || this.state === null) return;
    if (this.conn && !this.conn.closed) this.conn.close();
    this.ui.status("connecting…", "warn");
    const attempt = ++this.attempts;
    try {
      await this.connect("login", { username: this.state.me, token: this.token });
    } catch (error) {
      if (attempt !== this.attempts) return; // a newer attempt (/reconnect) took over
      if (error instanceof ServerError && error.code === "auth_failed") {
        this.logout("your login has expired: log in again");
      } else if (error instanceof ServerError && error.code === "suspended") {
        this.logout(error.message);
      } else if (!this.stopped) {
        this.scheduleReconnect();
      }
    }
  }

  logout(reason = null) {
    this.stopped = true;
    this.ready = false;
    for (const item of this.outbox.splice(0)) item.done(); // nobody is left to send them
    clearTimeout(this.timer);
    clearTimeout(this.peopleTimer);
    clearTimeout(this.inboxTimer);
    saved.clear();
    if (this.conn) {
      this.conn.request("quit").catch(() => {});
      this.conn.close();
    }
    this.state = null;
    this.ui.loggedOut(reason);
  }

  // -- what the page asks for -------------------------------------------------

  request(cmd, args) {
    if (!this.conn) return Promise.reject(new ConnectionClosed());
    return this.conn.request(cmd, args);
  }

  event(event) {
    if (this.state === null) return;
    const result = this.state.apply(event);
    if (result.added && result.added.length && result.buffer === this.state.current) {
      this.markRead(result.buffer);
    }
    if (result.unknown) this.refreshPeople();
    if (result.thread) this.markThreadRead();
    if (result.inbox || (result.reply && this.concerns(result.buffer, result.reply))) this.refreshInbox();
    if (result.alert) this.ui.alert(result.buffer, event);
    if (result.invite) this.ui.alert(null, { from: result.invite.by, text: result.invite.text });
    this.ui.changed(result);
  }

  // The rooms' member lists, asked again once arrivals settle (one round for
  // a burst of them).
  refreshPeople() {
    clearTimeout(this.peopleTimer);
    this.peopleTimer = setTimeout(async () => {
      if (this.state === null) return;
      await this.loadMembers([...this.state.rooms.keys()]);
      this.ui.changed({ people: true });
    }, PEOPLE_DELAY_MS);
  }

  // Asks the members of `rooms` (any public room, joined or not). A server
  // without `members` is asked who is online instead: the lists then show
  // online members only.
  async loadMembers(rooms) {
    const state = this.state;
    const asked = rooms.map((room) => this.request("members", { room }).then((reply) => [room, reply.members]));
    const answers = await Promise.allSettled(asked);
    if (state !== this.state) return;
    for (const answer of answers) {
      if (answer.status === "fulfilled") state.setMembers(...answer.value);
    }
    if (answers.some((a) => a.status === "rejected" && a.reason.code === "unknown_command")) {
      try {
        state.setOnline((await this.request("online")).users);
      } catch {
        // the connection is down: the next login asks again
      }
    }
  }

  // Tells the server (and so the user's other sessions) what has been seen.
  markRead(buffer) {
    if (!buffer || buffer.kind === "system" || !this.state.visible) return;
    const seq = buffer.last;
    if (seq <= buffer.readSeq) return;
    buffer.readSeq = seq;
    if (this.state.protocol < 2) return;
    clearTimeout(this.readTimers.get(buffer.key));
    const where = buffer.kind === "room" ? { room: buffer.name } : { with: buffer.name };
    this.readTimers.set(
      buffer.key,
      setTimeout(() => this.request("read", { ...where, seq: buffer.readSeq }).catch(() => {}), 300),
    );
  }

  // -- threads -----------------------------------------------------------------

  // Opens the thread of message `seq` of `buffer` in the pane: its root and
  // newest replies.
  async openThread(buffer, seq) {
    const reply = await this.request("thread", { ...address(buffer, seq), limit: PAGE });
    const following = this.state.inbox.entry(reply.root) !== null;
    this.state.thread = new OpenThread(buffer, reply.root, reply.messages, reply.more, following);
    this.markThreadRead();
  }

  closeThread() {
    this.state.thread = null;
  }

  async loadOlderReplies(thread) {
    const before = Math.min(...thread.replies.keys());
    const reply = await this.request("thread", { ...address(thread.buffer, thread.seq), limit: PAGE, before });
    thread.add(reply.messages);
    thread.more = reply.more;
  }

  async follow(thread, on) {
    const reply = await this.request("follow", { ...address(thread.buffer, thread.seq), on });
    thread.following = reply.following;
    thread.version += 1;
    this.markThreadRead();
    this.refreshInbox();
  }

  // Says `text` in `thread` (and in its room or conversation too, with
  // `broadcast`); replying follows the thread.
  replyInThread(thread, text, broadcast) {
    const buffer = thread.buffer;
    const extra = { thread: thread.seq, ...(broadcast ? { broadcast: true } : {}) };
    return this.queue({ kind: buffer.kind, target: buffer.name, text, extra, typed: text }).then(() => {
      if (this.state && this.state.thread === thread && !thread.following) {
        thread.following = true;
        thread.version += 1;
        this.ui.changed({ thread: true });
      }
    });
  }

  // The replies shown in the pane are read: the thread's marker moves (a
  // thread followed only; others have none), then the inbox is asked again.
  markThreadRead() {
    const thread = this.state.thread;
    if (!thread || !thread.following || !this.state.visible) return;
    const seq = thread.newest;
    if (seq <= thread.readSeq) return;
    thread.readSeq = seq;
    this.request("read", { ...address(thread.buffer, seq), thread: thread.seq })
      .then(() => this.refreshInbox())
      .catch(() => {});
  }

  // Whether a reply by someone else may change the inbox: the thread is
  // listed there, or this user may follow it without having said so (their
  // root, a mention of them, a root not loaded to tell).
  concerns(buffer, reply) {
    const state = this.state;
    if (state.isMe(reply.from)) return false;
    if (state.inbox.threads.some((entry) => entry.root.seq === reply.thread && state.bufferOf(entry.root) === buffer)) {
      return true;
    }
    const root = buffer.messages.get(reply.thread);
    return !root || state.isMe(root.from) || (Array.isArray(reply.mentions) && reply.mentions.some((n) => state.isMe(n)));
  }

  // The followed threads, as the server lists them now.
  async loadInbox() {
    const state = this.state;
    const reply = await this.request("threads", { limit: THREADS });
    state.inbox.set(reply.threads);
  }

  // The followed threads, asked again once a burst of changes settles.
  refreshInbox() {
    clearTimeout(this.inboxTimer);
    this.inboxTimer = setTimeout(async () => {
      const state = this.state;
      if (state === null) return;
      try {
        await this.loadInbox();
      } catch {
        return; // the connection is down: the next login asks again
      }
      if (state === this.state) this.ui.changed({ inbox: true });
    }, INBOX_DELAY_MS);
  }

  // -- the outbox: text to send, in the order typed --------------------------

  // Says `text` where the user is (`typed`: the line to give back if it is
  // refused, when it is more than the text, as `/me waves`). Resolves once it
  // is sent or refused, or at once while offline: it waits in the outbox.
  say(text, extra = {}, typed = null) {
    const buffer = this.state.current;
    if (!buffer || buffer.kind === "system") {
      this.state.note("this is no room: /join one, or /query someone", "error");
      return Promise.resolve();
    }
    return this.queue({ kind: buffer.kind, target: buffer.name, text, extra, typed });
  }

  // Shares uploaded `files` (their ids) with `text` in `buffer`: where they
  // were attached, wherever the user is by the time they are up.
  share(buffer, text, files) {
    return this.queue({ kind: buffer.kind, target: buffer.name, text, extra: { files }, typed: text });
  }

  sendDm(user, text, typed = null) {
    return this.queue({ kind: "dm", target: user, text, extra: {}, typed, told: true });
  }

  queue(item) {
    return new Promise((resolve) => {
      item.done = resolve;
      this.outbox.push(item);
      if (!this.ready) {
        this.state.note(`offline: queued for ${where(item)}, sent once reconnected`);
        resolve();
      }
      this.send();
    });
  }

  // Sends the outbox in order while the connection lasts; waits out flood
  // control; what the server refuses leaves the outbox and goes back to the
  // page. What the connection took with it stays, for after the next login.
  async send() {
    if (this.sending) return;
    this.sending = true;
    let told = false; // of the wait for flood control: once a run, not per message
    try {
      while (this.ready && this.outbox.length) {
        const item = this.outbox[0];
        const state = this.state;
        const buffer = item.kind === "room" ? state.rooms.get(item.target) : state.dms.get(fold(item.target));
        if (item.after !== undefined && buffer && landed(state, buffer, item)) {
          this.outbox.shift(); // the server had it before the connection dropped
          item.done();
          continue;
        }
        item.after = buffer ? buffer.newest : 0;
        try {
          if (item.kind === "room") await this.conn.request("say", { room: item.target, text: item.text, ...item.extra });
          else await this.conn.request("dm", { to: item.target, text: item.text, ...item.extra });
        } catch (error) {
          if (error instanceof ConnectionClosed) break; // kept: sent after the next login
          if (error.code === "rate_limited") {
            if (!told) state.note("sending too fast: the rest follows as the server allows");
            told = true;
            this.ui.changed({ force: true });
            await sleep(1000 * (typeof error.retryAfter === "number" ? error.retryAfter : 1));
            continue;
          }
          this.outbox.shift();
          const back = this.ui.giveBack(item);
          let kept = back ? "the text is back in the input" : "↑ in the input brings the text back";
          if (item.extra.files) kept = `${item.text ? `${kept}; ` : ""}attach the files again to share them`;
          state.note(`not sent to ${where(item)}: ${error.message} (${error.code}); ${kept}`, "error");
          item.done();
          this.ui.changed({ force: true });
          continue;
        }
        this.outbox.shift();
        if (item.told && state.dms.get(fold(item.target)) !== state.current) {
          state.note(`sent to ${item.target}: ${item.text}`);
        }
        item.done();
        this.ui.changed({ force: true });
      }
    } finally {
      this.sending = false;
    }
  }

  async openDm(user) {
    let buffer = this.state.dms.get(fold(user));
    if (buffer) return buffer;
    const { user: profile } = await this.request("whois", { username: user });
    buffer = this.state.dmBuffer(profile.username);
    await this.loadLatest(buffer);
    if (!buffer.activity) buffer.activity = Date.now() / 1000; // opened now: on top
    return buffer;
  }

  // The newest page of a conversation (which also marks it read, in protocol 1).
  async loadLatest(buffer) {
    if (buffer.kind !== "dm") return;
    const reply = await this.request("dms", { with: buffer.name, limit: PAGE });
    this.state.addMessages(buffer, reply.messages, { unread: false });
    buffer.more = reply.more;
    buffer.loaded = true;
  }

  // Older messages of a buffer; false when there are none left.
  async loadOlder(buffer, limit = PAGE) {
    if (!buffer.more || buffer.kind === "system") return false;
    const before = buffer.oldest;
    const reply =
      buffer.kind === "room"
        ? await this.request("history", { room: buffer.name, limit, before })
        : await this.request("dms", { with: buffer.name, limit, before });
    this.state.addMessages(buffer, reply.messages, { unread: false });
    buffer.more = reply.more && reply.messages.length > 0;
    return reply.messages.length > 0;
  }

  // Newer messages of a buffer opened at a message (after the newest shown).
  async loadNewer(buffer) {
    if (!buffer.moreAfter) return;
    const page = { limit: PAGE, after: buffer.end };
    const reply =
      buffer.kind === "room"
        ? await this.request("history", { room: buffer.name, ...page })
        : await this.request("dms", { with: buffer.name, ...page });
    if (buffer.end === page.after) this.state.addNewer(buffer, reply);
  }

  // Shows message `seq` of `buffer` with its neighbours: as it is if it is
  // shown, else the page around it (older and newer pages then load as the
  // user scrolls). Whether the message is there.
  async openAt(buffer, seq) {
    const oldest = buffer.oldest;
    if (buffer.loaded && oldest !== null && oldest <= seq && seq <= buffer.last) return buffer.messages.has(seq);
    const page = { limit: AROUND, around: seq };
    const reply =
      buffer.kind === "room"
        ? await this.request("history", { room: buffer.name, ...page })
        : await this.request("dms", { with: buffer.name, ...page });
    if (!reply.messages.some((message) => message.seq === seq)) return false;
    this.state.showPage(buffer, reply);
    return true;
  }

  async react(buffer, seq, emoji) {
    const message = buffer.messages.get(seq);
    const mine = message && message.reactions && (message.reactions[emoji] || []).some((u) => this.state.isMe(u));
    const where = buffer.kind === "room" ? { room: buffer.name } : { with: buffer.name };
    await this.request("react", { ...where, seq, emoji, on: !mine });
  }
}
