// The slash commands typed in the input, as in the terminal client: one table
// that parsing and /help read. `<x>` is required, `[x]` optional, `...`
// takes the rest of the line. Plain text is /say; `//text` says "/text".

import { ConnectionClosed } from "./connection.js";
import { count, fold } from "./state.js";

export class UsageError extends Error {}

export const COMMANDS = new Map();

// `args`, when given, replaces the arguments read from `usage` (for a usage
// that is more than a list of words, as `[#room] <user>`).
function command(name, usage, help, handler, { protocol = 1, args = null } = {}) {
  const read = [...usage.matchAll(/([<[])(\w+)(\.\.\.)?[>\]]/g)].map((m) => ({
    name: m[2],
    required: m[1] === "<",
    rest: Boolean(m[3]),
  }));
  COMMANDS.set(name, { name, usage, help, handler, args: args || read, protocol });
}

export function synopsis(cmd) {
  return `/${cmd.name} ${cmd.usage}`.trim();
}

// A typed line -> [command, args] or null for a blank line; throws UsageError.
export function parse(line) {
  if (!line.trim()) return null;
  if (!line.startsWith("/") || line.startsWith("//")) {
    return [COMMANDS.get("say"), { text: line.startsWith("//") ? line.slice(1) : line }];
  }
  const match = /^\/(\S*)\s*([\s\S]*)$/.exec(line);
  const cmd = COMMANDS.get(match[1].toLowerCase());
  if (!cmd) throw new UsageError(`unknown command /${match[1]}: /help lists them`);
  let rest = match[2].trim();
  const values = {};
  for (const arg of cmd.args) {
    if (!rest) {
      if (arg.required) throw new UsageError(`usage: ${synopsis(cmd)}`);
      values[arg.name] = null;
    } else if (arg.rest) {
      values[arg.name] = rest;
      rest = "";
    } else {
      const word = /^(\S+)\s*([\s\S]*)$/.exec(rest);
      values[arg.name] = word[1];
      rest = word[2];
    }
  }
  if (rest) throw new UsageError(`too many arguments; usage: ${synopsis(cmd)}`);
  return [cmd, values];
}

// The text a typed line would send as a message (plain text, /me, /reply,
// /dm, /msg, /query with text), or null for any other line.
export function messageText(line) {
  let parsed;
  try {
    parsed = parse(line);
  } catch {
    return null;
  }
  if (parsed === null || !MESSAGES.has(parsed[0].name)) return null;
  return parsed[1].text;
}

const MESSAGES = new Set(["say", "me", "reply", "dm", "msg", "query"]);

// Runs one typed line; every failure ends as one line in the pane, and the
// line goes back to the input (if nothing was typed there since) to be fixed.
export async function execute(ctx, line) {
  ctx.line = line;
  try {
    const parsed = parse(line);
    if (parsed === null) return;
    const [cmd, args] = parsed;
    if (cmd.protocol > ctx.state.protocol) throw new UsageError(`/${cmd.name} needs a newer server`);
    await cmd.handler(ctx, args);
  } catch (error) {
    const down = error instanceof ConnectionClosed;
    ctx.state.note(down ? `the connection is down, not done: ${line}` : describe(error), "error");
    ctx.giveBack(line);
  } finally {
    ctx.changed();
  }
}

export function describe(error) {
  if (error.code) {
    let text = `${error.message} (${error.code})`;
    if (typeof error.retryAfter === "number") text += `, try again in ${error.retryAfter.toFixed(1)} s`;
    return text;
  }
  return error.message;
}

const CLEAR = "-delete";

function roomOrCurrent(state, room) {
  if (room) return room.replace(/^#/, "").toLowerCase();
  if (!state.current || state.current.kind !== "room") {
    throw new UsageError("this is no room: name one, or /join one first");
  }
  return state.current.name;
}

function pageSize(text) {
  if (text === null) return 50;
  if (!/^\d+$/.test(text) || +text < 1 || +text > 500) {
    throw new UsageError("a count is a number from 1 to 500");
  }
  return +text;
}

// The message a command acts on: by its number, or your newest one here.
function target(state, seqText) {
  const buffer = state.current;
  if (!buffer || buffer.kind === "system") throw new UsageError("open a room or conversation first");
  if (seqText !== null) {
    if (!/^\d+$/.test(seqText)) throw new UsageError("a message is named by its number");
    return { buffer, seq: +seqText };
  }
  const mine = [...buffer.messages.values()].filter((m) => state.isMe(m.from) && !m.erased);
  if (!mine.length) throw new UsageError("you have said nothing here yet");
  return { buffer, seq: Math.max(...mine.map((m) => m.seq)) };
}

export function address(buffer, seq) {
  return buffer.kind === "room" ? { room: buffer.name, seq } : { with: buffer.name, seq };
}

command("say", "<text...>", "say text in the current buffer (plain text does the same)", (ctx, a) =>
  ctx.say(a.text, {}, ctx.line),
);
command("me", "<text...>", "say an action: * you text", (ctx, a) => ctx.say(a.text, { action: true }, ctx.line), {
  protocol: 2,
});
command("join", "<room>", "join a room and switch to it; you stay in the others", async (ctx, a) => {
  const reply = await ctx.request("join", { room: a.room });
  const buffer = ctx.state.addRoom(reply.room, reply.history);
  ctx.switchTo(buffer);
  ctx.state.note(`you are in #${reply.room.name}${reply.room.topic ? `: ${reply.room.topic}` : ""}`);
  await ctx.loadMembers([buffer.name]);
});
command("leave", "[room]", "leave a room (the current one by default)", async (ctx, a) => {
  const name = roomOrCurrent(ctx.state, a.room);
  await ctx.request("leave", { room: name });
  ctx.state.removeRoom(name);
  ctx.state.note(`you left #${name}`);
});
const PRIVATE = "--private";
command(
  "create",
  "<room> [topic...]",
  `create a room that you own, and enter it; ${PRIVATE} (anywhere after the name) makes it invitation-only`,
  async (ctx, a) => {
    const words = (a.topic || "").split(" ");
    const isPrivate = words.includes(PRIVATE);
    const topic = isPrivate ? words.filter((w) => w !== PRIVATE).join(" ").trim() || null : a.topic;
    if (isPrivate && ctx.state.protocol < 2) throw new UsageError("private rooms need a newer server");
    // Left out unless set, so a version 1 server sees the request it knows.
    const reply = await ctx.request("create", { room: a.room, topic, private: isPrivate || null });
    ctx.switchTo(ctx.state.addRoom(reply.room, []));
    ctx.state.note(`you created #${reply.room.name}${reply.room.private ? " (private: /invite people)" : ""}`);
  },
);
command("delete", "<room>", "delete a room you own, with its history", async (ctx, a) => {
  const name = roomOrCurrent(ctx.state, a.room);
  const member = ctx.state.rooms.has(name);
  await ctx.request("delete", { room: name });
  if (member && !ctx.state.rooms.has(name)) return; // its room_deleted came first and said it
  ctx.state.removeRoom(name);
  ctx.state.note(`you deleted #${name}`);
});
command(
  "topic",
  "[text...]",
  `show the current room's topic, set it, or clear it with ${CLEAR} (its owner, moderators, admins)`,
  async (ctx, a) => {
    const name = roomOrCurrent(ctx.state, null);
    if (a.text === null) {
      const topic = ctx.state.rooms.get(name).topic;
      ctx.state.note(topic ? `topic of #${name}: ${topic}` : `#${name} has no topic`);
      return;
    }
    const reply = await ctx.request("topic", { room: name, topic: a.text === CLEAR ? "" : a.text });
    ctx.state.addRoom(reply.room);
  },
);
// A button that opens a room: switches to it if joined, else joins it.
export function roomAction(state, room, label = null) {
  return state.rooms.has(room)
    ? { label: label || "open", line: `/buffer #${room}` }
    : { label: label || "join", line: `/join ${room}` };
}

command("rooms", "", "list all rooms (* marks the ones you are in), each with a button to open or join it", async (ctx) => {
  const reply = await ctx.request("rooms");
  ctx.state.note(`${count(reply.rooms.length, "room")}:`);
  for (const room of reply.rooms) {
    const mark = ctx.state.rooms.has(room.name) ? "*" : " ";
    const topic = room.topic ? ` ${room.topic}` : "";
    const kind = room.private ? " (private)" : "";
    const text = `${mark} #${room.name}${kind}  ${room.online}/${room.members} online${topic}`;
    ctx.state.note(text, "info", null, [roomAction(ctx.state, room.name)]);
  }
});
command("online", "", "list the people online", async (ctx) => {
  const reply = await ctx.request("online");
  ctx.state.setOnline(reply.users);
  const names = reply.users.map((u) => u.username + (u.guest ? " (guest)" : "") + (u.away ? " (away)" : ""));
  ctx.state.note(`${names.length} online: ${names.join(", ")}`);
});
command("names", "[room]", "list every member of a room, online first", async (ctx, a) => {
  const name = roomOrCurrent(ctx.state, a.room);
  await ctx.loadMembers([name]);
  const people = ctx.state.people(name);
  const here = people.filter((p) => p.online).length;
  const names = people.map((p) => `${p.online ? p.name : `(${p.name})`}${p.guest ? " (guest)" : ""}`).join(" ");
  ctx.state.note(`#${name} (${here} online, ${count(people.length, "member")}): ${names}`);
});
command("dm", "<user> <text...>", "send a direct message; it shows in that person's buffer", (ctx, a) =>
  ctx.sendDm(a.user, a.text, ctx.line),
);
command("msg", "<user> <text...>", "the same as /dm", (ctx, a) => ctx.sendDm(a.user, a.text, ctx.line));
command("query", "<user> [text...]", "open the conversation with a user (and say text there)", async (ctx, a) => {
  const buffer = await ctx.openDm(a.user);
  ctx.switchTo(buffer);
  if (a.text) await ctx.say(a.text, {}, a.text);
});
command("dms", "[user] [n]", "list conversations and unread counts, or open one with n more", async (ctx, a) => {
  if (a.user === null) {
    const dms = ctx.state.buffers().filter((b) => b.kind === "dm"); // the most recent first
    if (!dms.length) ctx.state.note("no conversations yet: /query someone");
    for (const b of dms) ctx.state.note(`${b.name}${b.unread ? `  ${b.unread} unread` : ""}`);
    return;
  }
  const buffer = await ctx.openDm(a.user);
  ctx.switchTo(buffer);
  if (a.n !== null) await ctx.loadOlder(buffer, pageSize(a.n));
});
command("close", "", "close the current conversation (rooms: /leave)", (ctx) => {
  const buffer = ctx.state.current;
  if (!buffer || buffer.kind !== "dm") throw new UsageError("this is no conversation: /leave a room");
  ctx.state.closeDm(buffer.name);
});
command("buffer", "<buffer>", "switch to a buffer by number or name", (ctx, a) => {
  const buffers = ctx.state.buffers();
  const wanted = fold(a.buffer.replace(/^[#@]/, ""));
  const found = /^\d+$/.test(a.buffer)
    ? buffers[+a.buffer - 1]
    : buffers.find((b) => fold(b.name) === wanted);
  if (!found) throw new UsageError(`no buffer ${a.buffer}`);
  ctx.switchTo(found);
});
command("history", "[room] [n]", "load n older messages of a room (default: current, 50)", async (ctx, a) => {
  let room = a.room;
  let n = a.n;
  if (room !== null && /^\d+$/.test(room) && n === null) [room, n] = [null, room];
  const buffer = room === null ? ctx.state.current : ctx.state.rooms.get(roomOrCurrent(ctx.state, room));
  if (!buffer || buffer.kind === "system") throw new UsageError("join the room first");
  await ctx.loadOlder(buffer, pageSize(n));
});
command("lastlog", "<words...>", "show the loaded lines of this buffer containing words", (ctx, a) => {
  const buffer = ctx.state.current;
  const words = fold(a.words);
  const found = [...buffer.messages.values()].filter((m) => fold(m.text || "").includes(words));
  ctx.state.note(`${found.length} lines with "${a.words}":`);
  for (const m of found) ctx.state.note(`  ${m.from}${m.guest ? " (guest)" : ""}: ${m.text}`);
});
command("whois", "<user>", "show a user's profile, with buttons to message them and open their rooms", async (ctx, a) => {
  const { user } = await ctx.request("whois", { username: a.user });
  const state = ctx.state;
  state.learn(user);
  const presence = user.online ? (user.away ? `away: ${user.away}` : "online") : "offline";
  const admin = user.admin ? ", server admin" : "";
  const guest = user.guest ? ", a guest: no account" : "";
  const talk = state.isMe(user.username) ? [] : [{ label: "message", line: `/query ${user.username}` }];
  state.note(`${user.username} (${presence}${admin}${guest})${user.bio ? ` — ${user.bio}` : ""}`, "info", null, talk);
  const rooms = user.rooms.map((room) => roomAction(state, room, `#${room}`));
  state.note(`  rooms:${rooms.length ? "" : " none"}`, "info", null, rooms);
});
command("bio", "[text...]", `show your bio, set it, or clear it with ${CLEAR}`, async (ctx, a) => {
  if (a.text === null) {
    const { user } = await ctx.request("whois", { username: ctx.state.me });
    ctx.state.note(user.bio ? `your bio: ${user.bio}` : "you have no bio");
    return;
  }
  await ctx.request("bio", { text: a.text === CLEAR ? "" : a.text });
  ctx.state.note(a.text === CLEAR ? "bio cleared" : "bio set");
});
command("away", "[text...]", "say you are away (with why), or back without text", async (ctx, a) => {
  await ctx.request("away", { text: a.text || "" });
  ctx.state.note(a.text ? `you are away: ${a.text}` : "you are back");
}, { protocol: 2 });
command("back", "", "you are back (the same as /away alone)", async (ctx) => {
  await ctx.request("away", { text: "" });
  ctx.state.note("you are back");
}, { protocol: 2 });
command("search", "<words...>", "search the messages of your rooms and conversations", async (ctx, a) => {
  const reply = await ctx.request("search", { query: a.words });
  ctx.showResults(`search "${a.words}"`, reply.results, reply.more);
}, { protocol: 2 });
command("mentions", "", "list the recent messages that name you", async (ctx) => {
  const reply = await ctx.request("mentions");
  ctx.showResults("mentions of you", reply.messages, false);
}, { protocol: 2 });
command("edit", "<text...>", "edit your newest message here (/edit N text: message N)", async (ctx, a) => {
  const numbered = /^(\d+)\s+([\s\S]+)$/.exec(a.text);
  const { buffer, seq } = target(ctx.state, numbered ? numbered[1] : null);
  await ctx.request("edit", { ...address(buffer, seq), text: numbered ? numbered[2] : a.text });
}, { protocol: 2 });
command("erase", "[seq]", "erase your newest message here (or message number seq)", async (ctx, a) => {
  const { buffer, seq } = target(ctx.state, a.seq);
  await ctx.request("erase", address(buffer, seq));
}, { protocol: 2 });
command("react", "<seq> <emoji>", "react to message number seq (again to take it back)", async (ctx, a) => {
  await ctx.react(ctx.state.current, +a.seq, a.emoji);
}, { protocol: 2 });
command("reply", "<seq> <text...>", "answer message number seq", (ctx, a) => {
  if (!/^\d+$/.test(a.seq)) throw new UsageError("a message is named by its number");
  return ctx.say(a.text, { reply_to: +a.seq }, ctx.line);
}, { protocol: 2 });
// `[#room|user] <n>` or `#room/n` -> [where (null: here), n]; throws UsageError.
function messagePlace(a, name) {
  let where = a.where;
  let n = a.n;
  if (where !== null && n === null) {
    const link = /^(#?[^\s/]+)\/(\d+)$/.exec(where);
    if (link) [where, n] = [link[1], link[2]];
    else [where, n] = [null, where];
  }
  if (n === null || !/^\d+$/.test(n)) throw new UsageError(`usage: /${name} [#room|user] <n>, or /${name} #room/n`);
  return [where, +n];
}

command(
  "goto",
  "[where] [n]",
  "open message n of a room (#room/n, or #room n) or a conversation (user n), with the messages around it",
  (ctx, a) => ctx.goto(...messagePlace(a, "goto")),
);
command(
  "thread",
  "[where] [n]",
  "open the thread of message n (here, #room/n, #room n or user n) in the side pane, to read and reply",
  (ctx, a) => ctx.thread(...messagePlace(a, "thread")),
  { protocol: 3 },
);
// -- moderation ---------------------------------------------------------------
// As in the terminal: the room is the current one unless the first word names
// one with `#`; reasons take the rest of the line. The server decides who may
// do what (not_allowed); the page offers in menus only what it will allow.

const MODERATION_ARGS = [
  { name: "user", required: true, rest: false },
  { name: "rest", required: false, rest: true },
];
const SEEN = new Set(["op", "deop", "kick", "mute", "unmute"]); // answered by an event to the room

// `[#room] <user> [rest...]` -> {room, user, rest}.
export function moderationTarget(state, first, rest) {
  if (first.startsWith("#")) {
    if (!rest) throw new UsageError("name the user after the room");
    const word = /^(\S+)\s*([\s\S]*)$/.exec(rest);
    return { room: roomOrCurrent(state, first), user: word[1], rest: word[2].trim() || null };
  }
  return { room: roomOrCurrent(state, null), user: first, rest };
}

function moderation(cmd, done, help, { reason }) {
  const usage = `[#room] <user>${reason ? " [reason...]" : ""}`;
  const handler = async (ctx, a) => {
    const state = ctx.state;
    const { room, user, rest } = moderationTarget(state, a.user, a.rest);
    if (rest && !reason) throw new UsageError(`usage: /${cmd} ${usage}`);
    const member = state.inRoom(room, user); // asked before: the event may come before the reply
    await ctx.request(cmd, reason ? { room, username: user, reason: rest || "" } : { room, username: user });
    const mine = state.rooms.get(room);
    if (mine && (SEEN.has(cmd) || (cmd === "ban" && member))) return; // the event says it
    state.note(`${user} ${done} #${room}${reason && rest ? `: ${rest}` : ""}`, "mod", mine || null);
  };
  command(cmd, usage, `${help} (in the current room, or the #room named first)`, handler, {
    protocol: 2,
    args: MODERATION_ARGS,
  });
}

moderation("op", "is now a moderator of", "make a member a moderator", { reason: false });
moderation("deop", "is no longer a moderator of", "take a moderator's role", { reason: false });
moderation("kick", "was kicked from", "remove a member (they may join again)", { reason: true });
moderation("ban", "is banned from", "remove a user and keep them out", { reason: true });
moderation("unban", "is no longer banned from", "let a banned user join again", { reason: true });
moderation("mute", "is muted in", "stop a member from speaking", { reason: false });
moderation("unmute", "is no longer muted in", "let a muted user speak again", { reason: false });
moderation("invite", "was invited to", "invite a user (to a private room too)", { reason: false });

command("bans", "[room]", "list the users banned from a room, by whom and why", async (ctx, a) => {
  const name = roomOrCurrent(ctx.state, a.room);
  const reply = await ctx.request("bans", { room: name });
  if (!reply.bans.length) {
    ctx.state.note(`nobody is banned from #${name}`);
    return;
  }
  ctx.state.note(`banned from #${name}: ${reply.bans.length}`);
  for (const ban of reply.bans) {
    const when = new Date(ban.ts * 1000).toLocaleString();
    const text = `  ${ban.user}, by ${ban.by || "?"} on ${when}${ban.reason ? `: ${ban.reason}` : ""}`;
    ctx.state.note(text, "info", null, [{ label: "unban", line: `/unban #${name} ${ban.user}` }]);
  }
}, { protocol: 2 });
command("admin", "<user> [on]", "make a user a server admin; `/admin user off` takes it away", async (ctx, a) => {
  if (![null, "on", "off"].includes(a.on)) throw new UsageError("usage: /admin <user> [on|off]");
  const { user } = await ctx.request("admin", { username: a.user, on: a.on !== "off" });
  ctx.state.learn(user);
  ctx.state.note(`${user.username} is ${user.admin ? "now" : "no longer"} an admin`);
}, { protocol: 2 });
command("suspend", "<user> [reason...]", "lock an account out of the server (admins only)", async (ctx, a) => {
  await ctx.request("suspend", { username: a.user, reason: a.reason || "" });
  ctx.state.note(`${a.user} is suspended${a.reason ? `: ${a.reason}` : ""}`);
}, { protocol: 2 });
command("unsuspend", "<user> [reason...]", "let a suspended account log in again", async (ctx, a) => {
  await ctx.request("unsuspend", { username: a.user, reason: a.reason || "" });
  ctx.state.note(`${a.user} is no longer suspended`);
}, { protocol: 2 });

command("ping", "", "measure the round trip to the server", async (ctx) => {
  const start = performance.now();
  await ctx.request("ping");
  ctx.state.note(`pong in ${(performance.now() - start).toFixed(1)} ms`);
});
command("reconnect", "", "connect again now, without waiting for the next attempt", (ctx) =>
  ctx.reconnect(),
);
command("clear", "", "clear the current pane", (ctx) => ctx.clear());
command("help", "[command]", "list the commands, or show one", (ctx, a) => {
  const usable = [...COMMANDS.values()].filter((c) => c.protocol <= ctx.state.protocol);
  if (a.command) {
    const cmd = COMMANDS.get(a.command.replace(/^\//, "").toLowerCase());
    if (!cmd) throw new UsageError(`unknown command /${a.command}`);
    ctx.state.note(`${synopsis(cmd)}: ${cmd.help}`);
    return;
  }
  for (const cmd of usable) ctx.state.note(`${synopsis(cmd)} — ${cmd.help}`);
  ctx.state.note("Enter sends, Shift-Enter starts a new line; //text says text starting with /");
});
command("quit", "", "log out of Nexus on this browser", (ctx) => ctx.logout());
