// The page: the login form, then the chat. It draws the state and turns
// clicks and keys into commands. Remote text is only ever put in the page
// as text (textContent, text nodes): never parsed as HTML, and without the
// bidirectional controls that could make it read in another order (clean).

import { Attachments } from "./attachments.js";
import { COMMANDS, UsageError, address, describe, execute, messageText, roomAction } from "./commands.js";
import { may, offered } from "./moderation.js";
import { Connection, serverUrl } from "./connection.js";
import { el, textNode } from "./dom.js";
import { saved, Session } from "./session.js";
import { parse } from "./markup.js";
import { MESSAGE_MAX, clean, count, fold, length, mentions } from "./state.js";
import { inThreadOnly } from "./threads.js";
import { TypingSender, typingLine } from "./typing.js";
import { Uploads } from "./uploads.js";

const $ = (id) => document.getElementById(id);
const REACTIONS = ["👍", "❤️", "😂", "🎉", "😮", "👀"];
const ERASED = "(message erased)";
// A web address, or a link to a room's message: `#room/seq`, as /goto takes it
// (found where the terminal client finds one: not inside a word or a path).
const LINK_PATTERN =
  /\bhttps?:\/\/[^\s<>"']+[^\s<>"'.,;:!?)\]]|(?<![\w#/-])#([A-Za-z0-9_-]{1,32})\/(\d{1,15})(?![\w/])/g;
const SEARCH_LIMIT = 50;
const FOUND_MS = 4000; // how long a message opened by a link stays outlined
const NEAR_END_PX = 40; // this close to the top (or bottom) of the pane, older (newer) pages load
const COUNT_FROM = MESSAGE_MAX - 500; // the input shows its length from here on

let session = null;
let registering = false;
let context = null; // {kind: "reply"|"edit", buffer, seq}
let queue = Promise.resolve(); // typed lines run in order
let drawn = { key: null, count: 0 }; // what the message pane shows
let paging = false; // a page of older or newer messages is being loaded
let menuFor = null; // {key, name}: the person (and room) whose menu is open, kept across redraws
let found = null; // {key, seq}: the message a link or a search result opened, highlighted
let completion = null; // Tab's candidates for the word before the caret, while Tab cycles them
const typed = { lines: [], at: 0, draft: "" }; // lines sent, for Up and Down
const TYPED_KEPT = 200;
const attachments = new Attachments(() => session && session.files);
const typing = new TypingSender((cmd, args) => (session ? session.request(cmd, args) : Promise.reject(new Error("logged out"))));
const uploads = new Uploads($("uploads"), {
  files: () => session && session.files,
  caption,
  share: (buffer, text, ids) => session.share(buffer, text, ids),
  giveBack: (text) => {
    if (session && session.state && !giveBack({ text })) {
      session.state.note("the files were not sent: ↑ in the input brings the text back", "error");
      draw({ force: true });
    }
  },
});
// The member menu's moderation entries (keyed by command); `ask` gives the
// question and the button of the dialog that confirms it, with a reason.
const MODERATION = {
  op: { label: "Make moderator" },
  deop: { label: "Remove moderator" },
  mute: { label: "Mute" },
  unmute: { label: "Unmute" },
  kick: {
    label: "Kick…",
    ask: (name, room) => [`Kick ${name} from #${room}? They may join again.`, "Kick"],
  },
  ban: {
    label: "Ban…",
    ask: (name, room) => [`Ban ${name} from #${room}? They cannot join again until unbanned.`, "Ban"],
  },
  suspend: {
    label: "Suspend account…",
    ask: (name) => [`Suspend ${name}'s account? They are logged out everywhere and cannot log in.`, "Suspend"],
  },
};
const ROLE_LABELS = { owner: "owner", admin: "admin", moderator: "mod" };

// A stable colour class for a name, the same on every screen.
function colour(name) {
  let hash = 0;
  for (const ch of fold(name)) hash = (hash * 31 + ch.codePointAt(0)) >>> 0;
  return `c${hash % 8}`;
}

// A name shown as the author of something. A guest's (an IRC user with no
// account: `guest` on its messages, whatever the name became since) is marked
// in words and style, so it is never taken for an account of the same name.
function author(name, guest, className = "") {
  const node = el("span", `${className} ${colour(name)}`.trim());
  node.append(el("bdi", "name", name)); // isolated: it cannot turn its neighbours around
  if (guest) {
    node.classList.add("guest");
    node.title = `a guest with no account: not the account named ${name}, if there is one`;
    node.append(" ", el("span", "guest-mark", "(guest)"));
  }
  return node;
}

// Text with links made clickable; every part is a text node or an <a> whose
// text and href are set as properties. A web address opens in a new tab; a
// `#room/seq` opens that message here. (A message sent `plain`.)
function richText(raw) {
  const text = clean(raw);
  const fragment = document.createDocumentFragment();
  let last = 0;
  for (const match of text.matchAll(LINK_PATTERN)) {
    fragment.append(textNode(text.slice(last, match.index)));
    fragment.append(match[1] === undefined ? webLink(match[0], match[0]) : messageLink(match[1], match[2], match[0]));
    last = match.index + match[0].length;
  }
  fragment.append(textNode(text.slice(last)));
  return fragment;
}

function webLink(url, text) {
  const link = el("a", null, text);
  link.href = url;
  link.target = "_blank";
  link.rel = "noopener noreferrer";
  return link;
}

function messageLink(room, seq, text) {
  const target = `#${room.toLowerCase()}/${seq}`;
  const link = el("a", "msglink", text);
  link.href = target;
  link.title = `open message ${seq} of #${room.toLowerCase()}`;
  link.addEventListener("click", (event) => {
    event.preventDefault();
    runLine(`/goto ${target}`);
  });
  return link;
}

// A message's text drawn from its formatting (markup.js): each block and
// styled run a DOM node made here, its text set as text, never HTML. Lines
// and items flow as text (a line break between them); quotes and code are
// blocks of their own.
function formatted(raw) {
  const fragment = document.createDocumentFragment();
  let previous = null;
  for (const block of parse(clean(raw))) {
    const own = block.kind === "quote" || block.kind === "code";
    if (previous !== null && !own && !previous) fragment.append("\n");
    previous = own;
    if (block.kind === "code") {
      const pre = el("pre", "md-code");
      pre.append(el("code", null, block.spans[0].text));
      fragment.append(pre);
      continue;
    }
    const line = el("span", `md-${block.kind}`);
    if (block.kind === "item") line.append(el("span", "md-marker", block.marker === "-" ? "• " : `${block.marker} `));
    for (const span of block.spans) line.append(inline(span));
    if (own && !line.textContent) line.append("\u200b"); // an empty quote line keeps its height
    fragment.append(line);
  }
  return fragment;
}

const STYLE_TAGS = [
  ["strike", "s"],
  ["italic", "em"],
  ["bold", "strong"],
];

function inline(span) {
  if (span.kind === "code") return el("code", "md-inline", span.text);
  let node;
  if (span.kind === "link") node = webLink(span.url, span.text);
  else if (span.kind === "message") node = messageLink(span.room, span.seq, span.text);
  else node = textNode(span.text);
  for (const [style, tag] of STYLE_TAGS) {
    if (!span.styles.has(style)) continue;
    const wrap = el(tag);
    wrap.append(node);
    node = wrap;
  }
  return node;
}

const time = (ts) =>
  new Date(ts * 1000).toLocaleTimeString([], { hour: "2-digit", minute: "2-digit", hourCycle: "h23" });
const day = (ts) =>
  new Date(ts * 1000).toLocaleDateString([], { weekday: "long", day: "2-digit", month: "long", year: "numeric" });

// -- the login form -----------------------------------------------------------

function showLogin(reason) {
  uploads.clear();
  attachments.clear();
  $("chat").hidden = true;
  $("login").hidden = false;
  $("login-error").textContent = reason || "";
  $("password").value = "";
  $("confirm").value = "";
  setMode(false);
  $("username").focus();
  document.title = "Nexus";
}

function setMode(register) {
  registering = register;
  $("confirm-label").hidden = !register;
  $("submit").textContent = register ? "Register" : "Log in";
  $("switch-mode").textContent = register ? "Have an account? Log in" : "New here? Register";
  $("password").autocomplete = register ? "new-password" : "current-password";
}

function formProblem(username, password) {
  if (!/^[A-Za-z0-9_-]{3,24}$/.test(username)) {
    return "a username has 3 to 24 letters, digits, _ or -";
  }
  if (registering && password.length < 8) return "a password has at least 8 characters";
  if (password.length > 1024) return "a password has at most 1,024 characters";
  if (!password) return "type your password";
  if (registering && password !== $("confirm").value) return "the two passwords differ";
  return null;
}

async function submitLogin(event) {
  event.preventDefault();
  const username = $("username").value.trim();
  const password = $("password").value;
  const problem = formProblem(username, password);
  if (problem) {
    $("login-error").textContent = problem;
    return;
  }
  if ("Notification" in window && Notification.permission === "default") {
    Notification.requestPermission().catch(() => {});
  }
  $("login-error").textContent = "";
  $("submit").disabled = true;
  try {
    await begin({ username, password, register: registering, remember: $("remember").checked });
  } catch (error) {
    $("login-error").textContent = clean(loginProblem(error, username));
    if (error.code === "username_taken" || error.code === "invalid_username") {
      // Nothing answers before login whether a name is free: the register
      // reply says it. The passwords stay; only the name needs typing again.
      $("username").focus();
      $("username").select();
    }
  } finally {
    $("submit").disabled = false;
  }
}

// Registering: as soon as the name is typed, before any password, whether it
// is free (`available` on a connection of its own; an older server, or none
// reachable, leaves the register reply to say it).
async function checkName() {
  const username = $("username").value.trim();
  if (!registering || !/^[A-Za-z0-9_-]{3,24}$/.test(username)) return;
  const conn = new Connection(serverUrl(window.location), { onEvent() {}, onClose() {} });
  try {
    await conn.open();
    const reply = await conn.request("available", { username });
    if (registering && $("username").value.trim() === username) {
      $("login-error").textContent = reply.available ? "" : clean(`${username} is taken: choose another name`);
    }
  } catch (error) {
    if (error.code === "invalid_username") $("login-error").textContent = clean(describe(error));
  } finally {
    conn.close();
  }
}

function loginProblem(error, username = "") {
  if (error.code === "auth_failed") return "wrong username or password";
  if (error.code === "username_taken") return `${username} is taken: type another name, the passwords are kept`;
  if (error.code) return describe(error);
  return "cannot reach the server: try again in a moment";
}

async function begin(login) {
  if (session) session.stopped = true;
  session = new Session({ changed: draw, status, alert, loggedOut: showLogin, giveBack });
  try {
    await session.start(login);
  } catch (error) {
    session.stopped = true;
    if (session.conn) session.conn.close();
    throw error;
  }
  $("login").hidden = true;
  $("chat").hidden = false;
  drawn = { key: null, count: 0 };
  draw();
  $("input").focus();
  const link = linked(window.location.hash);
  if (link) runLine(`/goto ${link}`); // the page was opened at a message's address
}

// `#room/seq` from a page address's fragment, or null.
function linked(hash) {
  const match = /^#([a-z0-9_-]{1,32})\/(\d{1,15})$/i.exec(hash || "");
  return match ? `#${match[1].toLowerCase()}/${match[2]}` : null;
}

// -- drawing ------------------------------------------------------------------

function status(text, level) {
  const node = $("status");
  node.textContent = text;
  node.className = `status ${level}`;
}

function draw(change = {}) {
  if (!session || !session.state) return;
  $("search-form").hidden = session.state.protocol < 2;
  $("threads-button").hidden = session.state.protocol < 3;
  drawSidebar();
  drawHeader();
  drawMessages(change);
  drawThread();
  drawInbox();
  drawTyping();
  attachments.sweep();
  $("attach").hidden = !canAttach();
  const total = session.state.buffers().reduce((n, b) => n + b.unread, 0);
  document.title = total ? `(${total}) Nexus` : "Nexus";
}

// Who else types in the buffer shown; drawn again when the first of them
// would stop being shown.
let typingTimer = null;
function drawTyping() {
  clearTimeout(typingTimer);
  const buffer = session.state.current;
  const now = Date.now();
  const names = buffer ? buffer.typists(now) : [];
  $("typing").textContent = typingLine(names);
  if (names.length) {
    const next = Math.min(...[...buffer.typing.values()].map((entry) => entry.until));
    typingTimer = setTimeout(() => session && session.state && drawTyping(), Math.max(50, next - now));
  }
}

function badge(count, className) {
  return count ? el("span", `badge ${className}`, String(count)) : null;
}

// The sidebar's items are kept across redraws, keyed by buffer (or invite),
// and moved only when out of place: a click whose press and release straddle
// a redraw still lands on the button it began on (whose contents, drawn anew,
// take no pointer events: style.css).
const sidebarItems = new Map();

function sidebarItem(key, onClick) {
  let item = sidebarItems.get(key);
  if (!item) {
    item = el("li");
    const button = el("button", "buffer");
    button.type = "button";
    button.addEventListener("click", onClick);
    item.append(button);
    sidebarItems.set(key, item);
  }
  return item;
}

function place(list, items) {
  items.forEach((item, index) => {
    if (list.children[index] !== item) list.insertBefore(item, list.children[index] || null);
  });
  while (list.children.length > items.length) list.lastElementChild.remove();
}

function openBuffer(key) {
  const buffer = session.state.buffers().find((b) => b.key === key);
  if (!buffer) return;
  switchTo(buffer);
  document.body.classList.remove("menu-open");
}

function drawSidebar() {
  const state = session.state;
  const items = { room: [], dm: [] };
  const shown = new Set();
  state.buffers().forEach((buffer, index) => {
    shown.add(buffer.key);
    const item = sidebarItem(buffer.key, () => openBuffer(buffer.key));
    const button = item.firstElementChild;
    button.className = "buffer";
    button.dataset.key = buffer.key;
    if (buffer === state.current) button.classList.add("current");
    if (buffer.unread) button.classList.add("unread");
    if (buffer.private) button.classList.add("private");
    button.title = buffer.private ? `${index + 1}, private: by invitation` : `${index + 1}`;
    const label = el("span", "label");
    label.append(el("bdi", null, buffer.label));
    if (buffer.kind === "dm") {
      label.prepend(el("span", state.isOnline(buffer.name) ? "dot on" : "dot", ""));
    }
    const unread = badge(buffer.unread, "count");
    const mention = badge(buffer.mentions, "mention");
    if (mention) mention.textContent = `@${buffer.mentions}`;
    button.replaceChildren(...[label, unread, mention].filter(Boolean));
    items[buffer.kind].push(item);
  });
  for (const [room, invite] of state.invites) {
    const key = `invite ${room}`;
    shown.add(key);
    const item = sidebarItem(key, () => runLine(`/join ${room}`));
    const button = item.firstElementChild;
    button.className = "buffer invite";
    button.title = `${invite.by ? `${invite.by} invited you` : "you are invited"}: click to join`;
    if (invite.room.private) button.classList.add("private");
    button.replaceChildren(el("span", "label", `#${room}`), el("span", "badge invited", "invited"));
    items.room.push(item);
  }
  for (const key of [...sidebarItems.keys()]) if (!shown.has(key)) sidebarItems.delete(key);
  if (!state.dms.size) items.dm.push(el("li", "hint", "/query name opens one"));
  place($("rooms"), items.room);
  place($("dms"), items.dm);
  const people = $("people");
  people.replaceChildren();
  const current = state.current;
  if (current && current.kind === "room") {
    const list = state.people(current.name);
    const here = list.filter((p) => p.online).length;
    $("people-title").textContent = `People (${here}/${list.length})`;
    $("people-title").title = `${here} online, ${count(list.length, "member")}`;
    for (const person of list) {
      const item = el("li", `${colour(person.name)}${person.online ? "" : " offline"}`);
      item.dataset.name = person.name;
      const name = el("button", "person", "");
      name.type = "button";
      name.setAttribute("aria-haspopup", "menu");
      name.append(el("span", person.online ? (person.away ? "dot away" : "dot on") : "dot", ""));
      name.append(el("bdi", null, person.name));
      if (person.guest) {
        item.classList.add("guest");
        name.append(el("span", "guest-mark", "(guest)"));
      }
      if (person.role) name.append(el("span", `role ${person.role}`, ROLE_LABELS[person.role]));
      if (person.muted) {
        item.classList.add("muted");
        name.append(el("span", "role muted", "muted"));
      }
      const said = [
        person.guest && "a guest: no account",
        person.role,
        person.muted && "muted",
        person.away && `away: ${person.away}`,
      ].filter(Boolean);
      if (said.length) name.title = clean(said.join(", "));
      name.addEventListener("click", (event) => {
        event.stopPropagation();
        toggleMenu(item, current, person.name);
      });
      item.append(name);
      if (menuOpen(current, person.name)) memberMenu(item, current, person.name);
      people.append(item);
    }
  } else {
    $("people-title").textContent = "";
  }
}

// The menu of a person in the room's list: talk to them, see them, and the
// moderation actions this user's roles allow on them (and nothing else).
function menuOpen(buffer, name) {
  return menuFor !== null && menuFor.key === buffer.key && fold(menuFor.name) === fold(name);
}

function toggleMenu(item, buffer, name) {
  const again = menuOpen(buffer, name);
  closeMenus();
  if (again) return; // a second click closes it
  menuFor = { key: buffer.key, name };
  memberMenu(item, buffer, name).querySelector("button").focus();
  // Whether they are an admin is known only from profiles: an offline one's is
  // asked now, and the menu is drawn again if the answer changes what it offers.
  const state = session.state;
  session
    .request("whois", { username: name })
    .then(({ user }) => {
      const was = state.isAdmin(name);
      state.learn(user);
      if (state.isAdmin(name) !== was && session.state === state) draw({ people: true });
    })
    .catch(() => {}); // no such user any more, or offline: the server still decides
}

function memberMenu(item, buffer, name) {
  const state = session.state;
  const menu = el("div", "member-menu");
  menu.setAttribute("role", "menu");
  const entry = (label, run, className = "") => {
    const button = el("button", `entry ${className}`.trim(), label);
    button.type = "button";
    button.setAttribute("role", "menuitem");
    button.dataset.action = className || label.toLowerCase();
    button.addEventListener("click", (event) => {
      event.stopPropagation();
      closeMenus();
      document.body.classList.remove("menu-open");
      run();
    });
    menu.append(button);
  };
  if (!state.isMe(name)) entry("Message", () => runLine(`/query ${name}`), "query");
  entry("Profile", () => runLine(`/whois ${name}`), "whois");
  const actions = buffer && buffer.kind === "room" ? offered(state, buffer, name) : [];
  if (actions.length) menu.append(el("hr"));
  for (const action of actions) {
    entry(MODERATION[action].label, () => moderate(action, buffer.name, name), action);
  }
  item.append(menu);
  return menu;
}

function closeMenus() {
  menuFor = null;
  document.querySelectorAll(".member-menu").forEach((menu) => menu.remove());
}

async function moderate(action, room, name) {
  const ask = MODERATION[action].ask;
  let reason = "";
  if (ask) {
    reason = await askReason(...ask(name, room));
    if (reason === null) return;
  }
  const where = action === "suspend" ? "" : `#${room} `;
  runLine(`/${action} ${where}${name}${reason ? ` ${reason}` : ""}`);
}

// Asks `question` in the page's dialog (never the browser's confirm(), which
// a page may be barred from and which looks like the browser's own); resolves
// with the reason typed (maybe "") when confirmed, null when cancelled.
// Without `reason`, the dialog asks only yes or no (and resolves with "").
function askReason(question, verb, { reason = true } = {}) {
  const dialog = $("ask");
  $("ask-text").textContent = clean(question);
  $("ask-ok").textContent = verb;
  $("reason").value = "";
  $("reason-label").hidden = !reason;
  return new Promise((resolve) => {
    const done = (value) => {
      $("ask-form").removeEventListener("submit", ok);
      $("ask-cancel").removeEventListener("click", cancel);
      dialog.removeEventListener("cancel", cancel);
      if (dialog.open) dialog.close();
      resolve(value);
      $("input").focus();
    };
    const ok = (event) => {
      event.preventDefault();
      done($("reason").value.replace(/\s+/g, " ").trim());
    };
    const cancel = (event) => {
      event.preventDefault();
      done(null);
    };
    $("ask-form").addEventListener("submit", ok);
    $("ask-cancel").addEventListener("click", cancel);
    dialog.addEventListener("cancel", cancel);
    dialog.showModal();
    (reason ? $("reason") : $("ask-ok")).focus();
  });
}

function drawHeader() {
  const state = session.state;
  const buffer = state.current;
  $("title").textContent = buffer ? clean(buffer.label) : "";
  $("title").classList.toggle("private", Boolean(buffer && buffer.private));
  const muted = Boolean(buffer && buffer.kind === "room" && buffer.muted.has(fold(state.me)));
  $("input").placeholder = muted ? `you are muted in #${buffer.name}` : placeholder(buffer);
  let topic = "";
  if (buffer && buffer.kind === "room") topic = buffer.topic;
  else if (buffer && buffer.kind === "dm") {
    const away = state.away(buffer.name);
    topic = away ? `away: ${away}` : state.isOnline(buffer.name) ? "online" : "offline";
  }
  $("topic").textContent = clean(topic);
  $("topic").title = clean(topic);
  const pins = buffer && buffer.kind === "room" ? buffer.pins : 0;
  $("pins").hidden = !pins;
  $("pins").textContent = `📌 ${pins}`;
}

// The pinned messages of the room shown, in the results panel (the latest
// pin first); each opens its message.
async function showPins() {
  const buffer = session && session.state && session.state.current;
  if (!buffer || buffer.kind !== "room") return;
  const list = $("result-list");
  $("results").hidden = false;
  $("results-title").textContent = `pinned in #${clean(buffer.name)}…`;
  list.replaceChildren();
  let reply;
  try {
    reply = await session.request("pins", { room: buffer.name });
  } catch (error) {
    $("results-title").textContent = clean(describe(error));
    return;
  }
  $("results-title").textContent = `${count(reply.messages.length, "message")} pinned in #${clean(buffer.name)}`;
  for (const message of reply.messages) {
    const item = resultItem(message);
    const by = el("span", "result-pinned", `pinned by ${message.pinned_by}, ${day(message.pinned_at)}`);
    item.querySelector(".result-head").append(by);
    list.append(item);
  }
}

// The input's placeholder: the longest of its wordings that fits the input
// (a phone's is narrow), never cut off.
let measure = null;
function placeholder(buffer) {
  const where = buffer && buffer.kind !== "system" ? ` ${buffer.label}` : "";
  const wordings = [`Message${where} — Tab completes names, /help lists commands`, `Message${where}`, "Message"];
  const input = $("input");
  const style = getComputedStyle(input);
  const room = input.clientWidth - parseFloat(style.paddingLeft) - parseFloat(style.paddingRight);
  if (!(room > 0)) return wordings[1];
  measure = measure || document.createElement("canvas").getContext("2d");
  measure.font = `${style.fontStyle} ${style.fontWeight} ${style.fontSize} ${style.fontFamily}`;
  return wordings.find((text) => measure.measureText(text).width <= room) || "";
}

function atBottom(pane) {
  return pane.scrollHeight - pane.scrollTop - pane.clientHeight < 30;
}

function drawMessages(change) {
  const state = session.state;
  const buffer = state.current || state.system;
  const pane = $("messages");
  const lines = buffer.lines();
  const stick = atBottom(pane);
  if (context && context.buffer === change.buffer && context.seq === change.changed) showContext();
  if (drawn.key === buffer.key && change.buffer === buffer && change.changed !== undefined) {
    // The message, and every reply quoting it: none may keep its old text.
    for (const message of [buffer.messages.get(change.changed), ...replies(buffer, change.changed)]) {
      const old = message && pane.querySelector(`[data-seq="${message.seq}"]`);
      if (old) old.replaceWith(messageElement(buffer, message));
    }
    if (!change.added || !change.added.length) return; // else a reply sent to the timeline too comes below
  }
  if (drawn.key === buffer.key && lines.length === drawn.count && !change.force) return;
  const appended =
    drawn.key === buffer.key && lines.length > drawn.count && change.buffer === buffer &&
    change.added && change.added.length === lines.length - drawn.count &&
    lines.slice(drawn.count).every((l) => l.message && change.added.includes(l.message));
  if (appended) {
    const previous = lines[drawn.count - 1];
    for (const line of lines.slice(drawn.count)) {
      appendDay(pane, previous, line);
      pane.append(lineElement(buffer, line));
    }
  } else {
    const before = pane.scrollHeight - pane.scrollTop;
    const top = pane.scrollTop;
    pane.replaceChildren();
    if (buffer.more && buffer.kind !== "system") pane.append(el("div", "more", "scroll up for older messages"));
    let previous = null;
    for (const line of lines) {
      appendDay(pane, previous, line);
      if (line.message && line.message.seq === buffer.firstUnread) pane.append(el("div", "rule unread", "unread"));
      pane.append(lineElement(buffer, line));
      previous = line;
    }
    if (buffer.moreAfter) pane.append(el("div", "more", "scroll down for newer messages"));
    if (drawn.key === buffer.key && change.older) {
      pane.scrollTop = pane.scrollHeight - before; // keep the reader's place
      drawn.count = lines.length;
      return;
    }
    if (drawn.key === buffer.key) pane.scrollTop = top;
    if (drawn.key === buffer.key && change.newer) {
      drawn.count = lines.length;
      return; // the reader stays where they were, the new page below
    }
  }
  if (change.jump && found && found.key === buffer.key) {
    const row = pane.querySelector(`.msg[data-seq="${found.seq}"]`);
    if (row) {
      row.scrollIntoView({ block: "center" });
      drawn = { key: buffer.key, count: lines.length };
      return;
    }
  }
  if (stick || drawn.key !== buffer.key || (change.added && change.added.some((m) => state.isMe(m.from)))) {
    pane.scrollTop = pane.scrollHeight;
  }
  drawn = { key: buffer.key, count: lines.length };
}

function replies(buffer, seq) {
  return [...buffer.messages.values()].filter((m) => m.reply_to === seq);
}

function lineTime(line) {
  return line.message ? line.message.ts : line.note.ts;
}

function appendDay(pane, previous, line) {
  const now = day(lineTime(line));
  if (!previous || day(lineTime(previous)) !== now) pane.append(el("div", "rule day", now));
}

function lineElement(buffer, line) {
  if (line.note) {
    const row = el("div", `note ${line.note.level}`);
    const text = el("span", "text", line.note.text);
    for (const action of line.note.actions || []) {
      const button = el("button", "note-action", action.label);
      button.type = "button";
      button.addEventListener("click", () => {
        for (const each of action.lines || [action.line]) runLine(each);
      });
      text.append(" ", button);
    }
    row.append(el("time", null, time(line.note.ts)), text);
    return row;
  }
  return messageElement(buffer, line.message);
}

// A message drawn, in the timeline or (`inPane`) in the thread pane, where
// it offers fewer actions and no way into the thread it is already in.
function messageElement(buffer, message, inPane = false) {
  const state = session.state;
  const row = el("div", "msg");
  row.dataset.seq = String(message.seq);
  if (state.isMe(message.from)) row.classList.add("self");
  else if (buffer.kind === "room" && mentions(message, state.me)) row.classList.add("mention");
  if (found && found.key === buffer.key && found.seq === message.seq) row.classList.add("found");
  const stamp = el("time", null, time(message.ts));
  stamp.title = `#${message.seq}, ${new Date(message.ts * 1000).toLocaleString()}`;
  const from = author(message.from, message.guest, "from");
  const body = el("div", "body");
  if (message.reply_to) {
    const quote = el("div", "quote", "↪ ");
    quote.append(...(quoted(buffer.messages.get(message.reply_to), 120) || [`message #${message.reply_to}`]));
    body.append(quote);
  }
  if (message.erased) {
    body.append(el("span", "erased", ERASED));
  } else {
    // The body is isolated and takes its direction from its own first letters:
    // a right-to-left message reads right to left without moving its neighbours.
    const text = el("span", "text");
    text.dir = "auto";
    if (message.action) {
      row.classList.add("action");
      body.append(el("span", "act", `* ${message.from} `));
    }
    text.append(message.plain ? richText(message.text) : formatted(message.text));
    body.append(text);
    if (message.edited) body.append(el("span", "edited", " (edited)"));
    if (message.files && message.files.length) body.append(attachments.list(message.files));
  }
  if (message.thread && !inPane) body.append(threadOf(buffer, message));
  if (message.thread_summary && !inPane) body.append(threadSummary(buffer, message));
  row.append(stamp, from, body);
  if (message.reactions && Object.keys(message.reactions).length) {
    const bar = el("div", "reactions");
    for (const [emoji, users] of Object.entries(message.reactions)) {
      const chip = el("button", "reaction", `${emoji} ${users.length}`);
      chip.type = "button";
      chip.title = users.join(", ");
      if (users.some((u) => state.isMe(u))) chip.classList.add("mine");
      chip.addEventListener("click", () => act(() => session.react(buffer, message.seq, emoji)));
      bar.append(chip);
    }
    row.append(bar);
  }
  if (state.protocol >= 2 && !message.erased) row.append(actions(buffer, message, inPane));
  return row;
}

// Under a root: "3 replies · last 10:42 · ana, bob", which opens the thread.
function threadSummary(buffer, message) {
  const summary = message.thread_summary;
  const n = summary.replies;
  const said = [`${n.toLocaleString("en-US")} ${n === 1 ? "reply" : "replies"}`, `last ${time(summary.last)}`];
  if (summary.participants.length) said.push(summary.participants.join(", "));
  const button = el("button", "thread-summary link", said.join(" · "));
  button.type = "button";
  button.title = "open the thread";
  button.addEventListener("click", () => openThread(buffer, message.seq));
  return button;
}

// On a reply sent to the timeline too: the thread it is in, which it opens.
function threadOf(buffer, message) {
  const line = el("button", "thread-of link", "in the thread of ");
  line.type = "button";
  line.append(...(quoted(buffer.messages.get(message.thread), 60) || [`#${message.thread}`]));
  line.addEventListener("click", () => openThread(buffer, message.thread));
  return line;
}

// A message in one line: its text, or the names of the files it is alone.
function summary(message) {
  if (message.text || !message.files || !message.files.length) return message.text || "";
  return `📎 ${message.files.map((file) => file.name).join(", ")}`;
}

// `ana: the first words` of a message quoted, as nodes (as it is now: an erased
// one shows none of its text), or null when it is not loaded.
function quoted(message, size) {
  if (!message) return null;
  const text = el("bdi", null, message.erased ? ERASED : summary(message).slice(0, size));
  return [author(message.from, message.guest), ": ", text];
}

function actions(buffer, message, inPane) {
  const state = session.state;
  const bar = el("div", "actions");
  const button = (label, title, run) => {
    const b = el("button", "action", label);
    b.type = "button";
    b.title = title;
    b.addEventListener("click", run);
    bar.append(b);
  };
  if (!inPane) {
    button("↪", "reply", () => setContext({ kind: "reply", buffer, seq: message.seq }));
    button("🧵", "reply in thread", () => openThread(buffer, message.thread || message.seq));
  }
  button("☺", "react", (event) => picker(event.currentTarget, buffer, message));
  if (buffer.kind === "room") {
    const link = `#${buffer.name}/${message.seq}`;
    if (!inPane) button("#", "link", () => insert(`${link} `));
    button("🔗", "copy link", (event) => copyLink(event.currentTarget, link));
  }
  if (state.isMe(message.from)) {
    button("✎", "edit", () => (inPane ? editInPane(message) : setContext({ kind: "edit", buffer, seq: message.seq })));
  }
  if (!inPane && buffer.kind === "room" && may(state, buffer, "pin") && !buffer.muted.has(fold(state.me))) {
    button("📌", "pin or unpin", () => act(() => session.request("pins", { room: buffer.name }).then((reply) => {
      const on = !reply.messages.some((pinned) => pinned.seq === message.seq);
      return session.request("pin", { room: buffer.name, seq: message.seq, on });
    })));
  }
  if (state.isMe(message.from) || (buffer.kind === "room" && may(state, buffer, "erase"))) {
    button("🗑", "erase", async () => {
      const yes = await askReason("Erase this message for everyone?", "Erase", { reason: false });
      if (yes !== null) act(() => session.request("erase", address(buffer, message.seq)));
    });
  }
  return bar;
}

// Copies a message's link, and says so on the button for a moment; where the
// browser gives no clipboard (a page not served over HTTPS or from this
// computer), the link goes in the input instead.
function copyLink(button, link) {
  if (!navigator.clipboard) {
    insert(`${link} `);
    return;
  }
  navigator.clipboard.writeText(link).then(
    () => {
      button.textContent = "✓";
      button.title = `copied ${link}`;
      setTimeout(() => {
        button.textContent = "🔗";
        button.title = "copy link";
      }, 1500);
    },
    () => insert(`${link} `),
  );
}

// Puts `text` in the input at the caret (a message's link, to be sent).
function insert(text) {
  const input = $("input");
  const at = input.selectionStart;
  const before = input.value.slice(0, at);
  const space = before && !/\s$/.test(before) ? " " : "";
  input.value = `${before}${space}${text}${input.value.slice(input.selectionEnd)}`;
  input.selectionStart = input.selectionEnd = at + space.length + text.length;
  input.focus();
  inputChanged();
}

function picker(anchor, buffer, message) {
  document.querySelectorAll(".picker").forEach((p) => p.remove());
  const box = el("div", "picker");
  for (const emoji of REACTIONS) {
    const b = el("button", "emoji", emoji);
    b.type = "button";
    b.addEventListener("click", () => {
      box.remove();
      act(() => session.react(buffer, message.seq, emoji));
    });
    box.append(b);
  }
  anchor.parentElement.append(box);
}

function act(run) {
  run().catch((error) => {
    session.state.note(describe(error), "error");
    draw({ force: true });
  });
}

// -- doing --------------------------------------------------------------------

function switchTo(buffer) {
  const state = session.state;
  if (state.current !== buffer) {
    setContext(null);
    closeMenus();
    found = null;
  }
  state.switchTo(buffer);
  draw({ force: true });
  if (buffer.kind === "dm" && !buffer.loaded) {
    act(async () => {
      await session.loadLatest(buffer);
      draw({ force: true });
    });
  }
  session.markRead(buffer);
}

function setContext(next) {
  context = next;
  $("context").hidden = next === null;
  if (next) {
    showContext();
    const message = next.buffer.messages.get(next.seq);
    if (next.kind === "edit" && message) $("input").value = message.text;
    $("input").focus();
    inputChanged();
  }
}

// The bar above the input: what is being replied to or edited, as it is now.
function showContext() {
  const what = quoted(context.buffer.messages.get(context.seq), 80) || [`#${context.seq}`];
  $("context-text").replaceChildren(context.kind === "edit" ? "editing " : "replying to ", ...what);
}

function commandContext(typedLine) {
  return {
    state: session.state,
    request: (cmd, args) => session.request(cmd, args),
    loadMembers: (rooms) => session.loadMembers(rooms),
    say: (text, extra, line) => session.say(text, extra, typedLine ? line : null),
    sendDm: (user, text, line) => session.sendDm(user, text, typedLine ? line : null),
    openDm: (user) => session.openDm(user),
    loadOlder: (buffer, n) => session.loadOlder(buffer, n),
    react: (buffer, seq, emoji) => session.react(buffer, seq, emoji),
    goto: openMessage,
    thread: openThreadAt,
    switchTo,
    reconnect: () => session.reconnect(),
    logout: () => session.logout(),
    clear: () => {
      const buffer = session.state.current;
      buffer.messages.clear();
      buffer.notes = [];
      buffer.more = true;
      session.state.setEnd(buffer, null, false);
    },
    showResults: (title, messages, more) => {
      const state = session.state;
      state.note(`${title}: ${messages.length}${more ? "+" : ""} found`);
      for (const m of messages) {
        const where = m.room ? `#${m.room}` : state.isMe(m.from) ? `→ ${m.to}` : "direct";
        const open = { label: "open", lines: resultLines(m) };
        state.note(`${time(m.ts)} ${where} ${m.from}${m.guest ? " (guest)" : ""}: ${m.text}`, "info", null, [open]);
      }
    },
    // A line typed that did not work goes back to the input; a button's never.
    giveBack: (line) => typedLine && giveBack({ text: line }),
    changed: () => draw({ force: true }),
  };
}

// What opens a message found: /goto its place (`#room/seq`, or `user seq`);
// a reply in a thread is shown in its thread, opened at its root.
function resultLines(message) {
  const other = session.state.isMe(message.from) ? message.to : message.from;
  const place = (seq) => (message.room ? `#${message.room}/${seq}` : `${other} ${seq}`);
  if (!inThreadOnly(message)) return [`/goto ${place(message.seq)}`];
  return [`/goto ${place(message.thread)}`, `/thread ${place(message.thread)}`];
}

// `typedLine`: typed in the input (given back if it fails), not a button's.
function runLine(line, typedLine = false) {
  queue = queue.then(() => execute(commandContext(typedLine), line));
  return queue;
}

// Text that was not sent, back in the input if nothing was typed there since
// (with the reply it was, or the edit); false if the input was taken.
function giveBack(item) {
  const thread = session && session.state && session.state.thread;
  if (item.extra && item.extra.thread) {
    const input = $("thread-input");
    if (!thread || thread.seq !== item.extra.thread || input.value.trim()) return false;
    input.value = item.typed || item.text;
    return true;
  }
  const input = $("input");
  if (input.value.trim()) return false;
  input.value = item.typed || item.text;
  inputChanged();
  const state = session && session.state;
  const buffer = item.kind === "room" ? state.rooms.get(item.target) : item.kind === "dm" ? state.dms.get(fold(item.target)) : null;
  const reply = item.extra && item.extra.reply_to;
  if (reply && buffer && buffer === state.current) setContext({ kind: "reply", buffer, seq: reply });
  return true;
}

// Opens message `seq` of `where` (`#room`, a user, or null: here), loading
// older history as needed, scrolled to and highlighted.
async function openMessage(where, seq) {
  const state = session.state;
  let buffer = state.current;
  if (where !== null && where.startsWith("#")) {
    const room = where.slice(1).toLowerCase();
    buffer = state.rooms.get(room);
    if (!buffer) {
      const join = { label: `join #${room} and open it`, lines: [`/join ${room}`, `/goto #${room}/${seq}`] };
      state.note(`#${room}/${seq} is in #${room}, where you are not`, "info", null, [join]);
      return;
    }
  } else if (where !== null) {
    buffer = await session.openDm(where);
  }
  if (!buffer || buffer.kind === "system") throw new UsageError("open a room or conversation first");
  switchTo(buffer);
  if (!(await session.openAt(buffer, seq))) {
    if (await openReply(buffer, seq)) return;
    throw new UsageError(`no message ${seq} in ${buffer.label}: not stored, or never sent`);
  }
  highlight(buffer, seq);
  if (state.current === buffer) draw({ force: true, jump: true });
}

// A message not on the timeline may be a thread's reply: the server answers
// `thread` for a reply with the thread it is in, opened in the pane with the
// reply outlined. False when no thread holds it.
async function openReply(buffer, seq) {
  try {
    await session.openThread(buffer, seq);
  } catch (error) {
    if (error.code === "no_such_message") return false;
    throw error;
  }
  const thread = session.state.thread;
  if (!thread.replies.has(seq)) return false;
  highlight(buffer, seq);
  draw({ thread: true });
  const row = $("thread-messages").querySelector(`.msg[data-seq="${seq}"]`);
  if (row) row.scrollIntoView({ block: "center" });
  return true;
}

// Opens the thread of message `seq` of `where` (`#room`, a user, or null: here).
async function openThreadAt(where, seq) {
  const state = session.state;
  let buffer = state.current;
  if (where !== null && where.startsWith("#")) buffer = state.rooms.get(where.slice(1).toLowerCase());
  else if (where !== null) buffer = await session.openDm(where);
  if (!buffer || buffer.kind === "system") throw new UsageError("open a room or conversation first, or name one");
  if (paneEditing !== null) editInPane(null);
  await session.openThread(buffer, seq);
  $("thread-input").focus();
}

// The message opened is outlined for a moment, then drawn as any other.
let foundTimer = null;
function highlight(buffer, seq) {
  clearTimeout(foundTimer);
  found = { key: buffer.key, seq };
  foundTimer = setTimeout(() => {
    found = null;
    document.querySelectorAll(".msg.found").forEach((row) => row.classList.remove("found"));
  }, FOUND_MS);
}

function send(event) {
  event.preventDefault();
  const input = $("input");
  const text = input.value;
  if (!text.trim()) return;
  const current = context;
  const message = current && current.kind === "edit" ? text : messageText(text);
  if (message !== null && length(message) > MESSAGE_MAX) {
    // Never sent to be refused: the text stays where it is, to be cut.
    const limit = MESSAGE_MAX.toLocaleString("en-US");
    const size = length(message).toLocaleString("en-US");
    session.state.note(
      `a message has at most ${limit} characters and this one has ${size}: nothing was sent, the text is still in the input`,
      "error",
    );
    draw({ force: true });
    return;
  }
  input.value = "";
  inputChanged();
  remember(text);
  if (message !== null && !(current && current.kind === "edit")) typing.sent();
  setContext(null);
  if (current && current.kind === "edit") {
    act(async () => {
      try {
        await session.request("edit", { ...address(current.buffer, current.seq), text });
      } catch (error) {
        if (!$("input").value.trim()) {
          setContext(current);
          $("input").value = text;
          inputChanged();
        }
        throw error;
      }
    });
  } else if (current && current.kind === "reply" && !text.startsWith("/")) {
    queue = queue.then(() => session.say(text, { reply_to: current.seq }, text)); // after the lines before
  } else {
    runLine(text, true);
  }
}

// A line sent, for Up and Down to bring back.
function remember(text) {
  if (typed.lines[typed.lines.length - 1] !== text) typed.lines.push(text);
  if (typed.lines.length > TYPED_KEPT) typed.lines.shift();
  typed.at = typed.lines.length;
}

// -- files ----------------------------------------------------------------------

// Whether files can be attached here: the server keeps them, and this is a
// room or a conversation.
function canAttach() {
  const buffer = session && session.state && session.state.current;
  return Boolean(buffer && session.files && buffer.kind !== "system");
}

function attach(blobs) {
  if (blobs.length && canAttach()) uploads.attach(blobs, session.state.current);
}

// The input's text, taken out of it to go with files being attached: plain
// text only; a command, an edit, a reply or text past the limit stays.
function caption() {
  const input = $("input");
  const text = input.value;
  if (!text.trim() || context || text.startsWith("/") || length(text) > MESSAGE_MAX) return "";
  input.value = "";
  inputChanged();
  remember(text);
  return text;
}

// Files pasted: an image copied, or files copied in a file manager. Text
// copied from an office program comes with a picture of itself too: text
// on the clipboard is pasted as text.
function pasted(event) {
  const data = event.clipboardData;
  if (!data || !data.files.length || data.types.includes("text/plain") || !canAttach()) return;
  event.preventDefault();
  attach([...data.files]);
}

// Files dragged over the messages or the input: the pane shows where they
// may be dropped.
function dragging(event) {
  if (!event.dataTransfer || !event.dataTransfer.types.includes("Files") || !canAttach()) return;
  event.preventDefault();
  event.dataTransfer.dropEffect = "copy";
  document.querySelector(".main").classList.add("dropping");
}

function dragLeft(event) {
  const main = document.querySelector(".main");
  if (!main.contains(event.relatedTarget)) main.classList.remove("dropping");
}

function dropped(event) {
  document.querySelector(".main").classList.remove("dropping");
  if (!event.dataTransfer || !event.dataTransfer.files.length || !canAttach()) return;
  event.preventDefault();
  attach([...event.dataTransfer.files]);
}

function resize() {
  const input = $("input");
  input.style.height = "auto";
  input.style.height = `${Math.min(input.scrollHeight, 160)}px`;
}

// After the input changed: its height, and its length against the limit once
// it comes near it (in characters, as the server counts).
function inputChanged() {
  resize();
  const text = $("input").value;
  const message = context && context.kind === "edit" ? text : text.length > COUNT_FROM ? messageText(text) : null;
  const size = message === null ? 0 : length(message);
  const counter = $("count");
  counter.hidden = size <= COUNT_FROM;
  counter.textContent = `${size.toLocaleString("en-US")} / ${MESSAGE_MAX.toLocaleString("en-US")}`;
  counter.className = size > MESSAGE_MAX ? "count over" : "count";
  counter.title = size > MESSAGE_MAX ? "too long to send: a message has at most this many characters" : "";
}

function keydown(event) {
  if (event.key !== "Tab") completion = null;
  if (event.key === "Enter" && !event.shiftKey && !event.isComposing) {
    send(event);
  } else if ((event.key === "ArrowUp" || event.key === "ArrowDown") && recall(event.key === "ArrowUp")) {
    event.preventDefault();
  } else if (event.key === "Escape" && context) {
    setContext(null);
    $("input").value = "";
    inputChanged();
  } else if (event.key === "Tab" && !event.shiftKey && $("input").value) {
    event.preventDefault(); // Tab completes here: it never takes the focus away from text
    complete();
  }
}

// Tab: a command's name after `/`, else the name before the caret from the
// room's people (`name: ` at the start of the line, `@name`, or `name `); each
// Tab again takes the next candidate.
function complete() {
  const input = $("input");
  const value = input.value;
  const caret = input.selectionStart;
  if (completion && completion.value === value && completion.caret === caret) {
    completion.index = (completion.index + 1) % completion.names.length;
  } else {
    const before = value.slice(0, caret);
    if (/^\/\S*$/.test(before)) {
      const typedName = before.slice(1).toLowerCase();
      const names = [...COMMANDS.keys()].filter((name) => name.startsWith(typedName));
      if (names.length === 1) input.value = `/${names[0]} ${value.slice(caret).trimStart()}`;
      else if (names.length) session.state.note(names.map((n) => `/${n}`).join(" "));
      draw({ force: true });
      return;
    }
    const word = /(^|[^A-Za-z0-9_-])(@?)([A-Za-z0-9_-]+)$/.exec(before);
    if (!word) return;
    const head = before.slice(0, before.length - word[2].length - word[3].length);
    const names = candidates().filter((name) => fold(name).startsWith(fold(word[3])));
    if (!names.length) return;
    const suffix = !head.trim() && !word[2] ? ": " : " ";
    completion = { head: head + word[2], suffix, tail: value.slice(caret), names, index: 0 };
  }
  const name = completion.names[completion.index];
  const start = completion.head + name + completion.suffix;
  input.value = start + completion.tail.replace(/^ /, "");
  input.selectionStart = input.selectionEnd = start.length;
  completion.value = input.value;
  completion.caret = start.length;
  inputChanged();
}

// The names Tab offers: the current room's people (online first), or the
// other person of a conversation; never oneself.
function candidates() {
  const state = session.state;
  const buffer = state.current;
  let names = [];
  if (buffer && buffer.kind === "room") names = state.people(buffer.name).map((p) => p.name);
  else if (buffer && buffer.kind === "dm") names = [buffer.name];
  return names.filter((name) => !state.isMe(name));
}

// Up and Down walk through the lines sent, when the caret is on the input's
// first (Up) or last (Down) line; true if the input changed.
function recall(up) {
  const input = $("input");
  const before = input.value.slice(0, input.selectionStart);
  const after = input.value.slice(input.selectionEnd);
  if ((up && before.includes("\n")) || (!up && after.includes("\n"))) return false;
  if (up && typed.at === 0) return false;
  if (!up && typed.at >= typed.lines.length) return false;
  if (typed.at === typed.lines.length) typed.draft = input.value;
  typed.at += up ? -1 : 1;
  input.value = typed.at === typed.lines.length ? typed.draft : typed.lines[typed.at];
  input.selectionStart = input.selectionEnd = input.value.length;
  inputChanged();
  return true;
}

// Scrolled near the top: older messages; near the bottom of a page opened at
// a message: newer ones, until the newest (then live ones come on).
async function scrolled() {
  const pane = $("messages");
  if (paging || !session || !session.state) return;
  const buffer = session.state.current;
  if (!buffer || buffer.kind === "system") return;
  const older = pane.scrollTop <= NEAR_END_PX && buffer.more;
  const newer = pane.scrollHeight - pane.scrollTop - pane.clientHeight <= NEAR_END_PX && buffer.moreAfter;
  if (!older && !newer) return;
  paging = true;
  try {
    if (older) await session.loadOlder(buffer);
    else await session.loadNewer(buffer);
    if (session.state.current === buffer) draw(older ? { force: true, older: true } : { force: true, newer: true });
  } catch {
    // the connection is down: the next scroll tries again
  } finally {
    paging = false;
  }
}

// A browser notification while the tab is hidden; `buffer` is where a click
// takes the user (null for an invitation: the page as it is).
function alert(buffer, message) {
  if (!document.hidden || !("Notification" in window) || Notification.permission !== "granted") return;
  const where = buffer && buffer.kind === "room" ? ` in #${buffer.name}` : "";
  const tag = buffer ? buffer.key : "invitation";
  const from = `${message.from}${message.guest ? " (guest)" : ""}`;
  const note = new Notification(clean(`${from}${where}`), { body: clean(summary(message)), tag });
  note.addEventListener("click", () => {
    window.focus();
    if (buffer && session.state.find(buffer.key) === buffer) switchTo(buffer);
  });
}

function visibility() {
  if (!session || !session.state) return;
  session.state.visible = !document.hidden;
  if (!document.hidden && session.state.current) {
    session.state.switchTo(session.state.current);
    session.markRead(session.state.current);
    session.markThreadRead();
    draw({ force: true });
  }
}

// -- threads ---------------------------------------------------------------------

// Opens the thread of message `seq` of `buffer` in the side pane (over the
// messages on a narrow screen).
function openThread(buffer, seq) {
  document.body.classList.remove("menu-open");
  if (paneEditing !== null) editInPane(null);
  act(async () => {
    await session.openThread(buffer, seq);
    draw({ thread: true });
    $("thread-input").focus();
  });
}

function closeThread() {
  if (!session || !session.state || !session.state.thread) return;
  if (paneEditing !== null) editInPane(null);
  session.closeThread();
  drawnThread = null;
  draw({ thread: true });
  $("input").focus();
}

// The pane: the root on top, then the replies, oldest first; drawn again when
// the thread changed (and kept at the bottom when it was there).
let drawnThread = null; // {thread, version}
function drawThread() {
  const thread = session.state.thread;
  $("thread").hidden = thread === null;
  if (thread === null) return;
  if (drawnThread && drawnThread.thread === thread && drawnThread.version === thread.version) return;
  const buffer = thread.buffer;
  const where = buffer.kind === "room" ? `#${buffer.name}` : buffer.name;
  $("thread-title").textContent = clean(`Thread in ${where}`);
  $("thread-follow").textContent = thread.following ? "Following ✓" : "Follow";
  $("thread-follow").title = thread.following ? "stop following: its replies no longer count in the inbox" : "follow its replies in the inbox";
  $("thread-broadcast-label").textContent = clean(`also send to ${where}`);
  const pane = $("thread-messages");
  const same = drawnThread && drawnThread.thread === thread;
  const stick = !same || atBottom(pane);
  const top = pane.scrollTop;
  pane.replaceChildren(messageElement(buffer, thread.root, true));
  const n = thread.root.thread_summary ? thread.root.thread_summary.replies : thread.replies.size;
  pane.append(el("div", "rule replies", n ? `${n.toLocaleString("en-US")} ${n === 1 ? "reply" : "replies"}` : "no replies yet"));
  if (thread.more) {
    const older = el("button", "link older-replies", "older replies");
    older.type = "button";
    older.addEventListener("click", () => act(async () => {
      await session.loadOlderReplies(thread);
      draw({ thread: true });
    }));
    pane.append(older);
  }
  for (const reply of thread.lines()) pane.append(messageElement(buffer, reply, true));
  pane.scrollTop = stick ? pane.scrollHeight : top;
  drawnThread = { thread, version: thread.version };
}

// The pane's input edits one of the user's messages there (its seq), or null;
// editInPane(null) goes back to replying.
let paneEditing = null;
function editInPane(message) {
  paneEditing = message === null ? null : message.seq;
  const input = $("thread-input");
  input.value = message === null ? "" : message.text;
  input.placeholder = message === null ? "Reply in the thread" : "";
  $("thread-editing").hidden = message === null;
  $("thread-broadcast").closest("label").hidden = message !== null;
  input.focus();
}

// Sends the pane's input as a reply in its thread (and to the timeline too,
// when ticked), or as the edit of the message being edited.
function sendInThread(event) {
  event.preventDefault();
  const thread = session && session.state && session.state.thread;
  const input = $("thread-input");
  const text = input.value;
  if (!thread || !text.trim()) return;
  if (paneEditing !== null) {
    const seq = paneEditing;
    editInPane(null);
    act(async () => {
      try {
        await session.request("edit", { ...address(thread.buffer, seq), text });
      } catch (error) {
        if (!input.value.trim() && session.state.thread === thread) editInPane({ seq, text }); // to be fixed
        throw error;
      }
    });
    return;
  }
  if (length(text) > MESSAGE_MAX) {
    const limit = MESSAGE_MAX.toLocaleString("en-US");
    session.state.note(`a message has at most ${limit} characters: nothing was sent, the text is still in the thread's input`, "error");
    draw({ force: true });
    return;
  }
  input.value = "";
  const broadcast = $("thread-broadcast").checked;
  $("thread-broadcast").checked = false;
  session.replyInThread(thread, text, broadcast);
}

// The inbox button: how many followed threads have replies unread.
function drawInbox() {
  const n = session.state.inbox.count;
  $("threads-count").textContent = n ? String(n) : "";
  $("threads-count").hidden = !n;
  $("threads-button").title = n ? `${count(n, "thread")} with unread replies` : "threads you follow";
}

// The followed threads, in the results panel, the latest reply first; each
// opens its thread.
async function showInbox() {
  document.body.classList.remove("menu-open");
  const list = $("result-list");
  $("results").hidden = false;
  $("results-title").textContent = "threads you follow…";
  list.replaceChildren();
  const inbox = session.state.inbox;
  try {
    await session.loadInbox();
  } catch (error) {
    $("results-title").textContent = clean(describe(error));
    return;
  }
  drawInbox();
  const unread = inbox.count ? `, ${inbox.count} with unread replies` : "";
  $("results-title").textContent = `${count(inbox.threads.length, "thread")} you follow${unread}`;
  for (const entry of inbox.threads) {
    const item = resultItem(entry.root, () => openFromInbox(entry.root));
    const said = `${entry.unread ? `${entry.unread} unread · ` : ""}last ${time(entry.last)}`;
    item.querySelector(".result-head").append(el("span", entry.unread ? "result-unread" : "result-last", said));
    list.append(item);
  }
}

function openFromInbox(root) {
  const state = session.state;
  act(async () => {
    const buffer = root.room ? state.rooms.get(root.room) : await session.openDm(state.isMe(root.from) ? root.to : root.from);
    if (!buffer) throw new UsageError(`#${root.room}: you are no longer in it`);
    openThread(buffer, root.seq);
  });
}

// -- the search box --------------------------------------------------------------

async function search(event) {
  event.preventDefault();
  const query = $("search").value.trim();
  if (!query || !session || !session.state) return;
  document.body.classList.remove("menu-open");
  const panel = $("results");
  const list = $("result-list");
  panel.hidden = false;
  $("results-title").textContent = `searching for “${clean(query)}”…`;
  list.replaceChildren();
  let reply;
  try {
    reply = await session.request("search", { query, limit: SEARCH_LIMIT });
  } catch (error) {
    $("results-title").textContent = clean(describe(error));
    return;
  }
  const more = reply.more ? "+" : "";
  const n = reply.results.length;
  $("results-title").textContent = `${count(n, "message")}${more} with “${clean(query)}”`;
  for (const message of reply.results) list.append(resultItem(message));
  const first = list.querySelector("button");
  if (first) first.focus();
}

// One result: where and who, when, and the text; a click opens it (or does
// `open`).
function resultItem(message, open = null) {
  const state = session.state;
  const item = el("li");
  const button = el("button", "result");
  button.type = "button";
  const where = message.room ? `#${message.room}` : state.isMe(message.from) ? `→ ${message.to}` : "direct";
  const head = el("span", "result-head");
  head.append(el("span", "result-where", where), author(message.from, message.guest, "result-from"));
  const when = el("time", null, `${day(message.ts)}, ${time(message.ts)}`);
  head.append(when);
  const text = el("span", "result-text");
  text.dir = "auto";
  text.textContent = clean(message.text);
  button.append(head, text);
  button.addEventListener("click", () => {
    closeResults();
    if (open) open();
    else for (const line of resultLines(message)) runLine(line);
  });
  item.append(button);
  return item;
}

function closeResults() {
  $("results").hidden = true;
}

// -- the room browser ---------------------------------------------------------------

async function browseRooms() {
  document.body.classList.remove("menu-open");
  const dialog = $("rooms-dialog");
  const list = $("room-list");
  $("create-error").textContent = "";
  list.replaceChildren(el("li", "hint", "loading…"));
  if (!dialog.open) dialog.showModal();
  let reply;
  try {
    reply = await session.request("rooms");
  } catch (error) {
    list.replaceChildren(el("li", "error", describe(error)));
    return;
  }
  list.replaceChildren();
  for (const room of reply.rooms) list.append(roomItem(room));
  $("create-private").closest("label").hidden = session.state.protocol < 2;
}

function roomItem(room) {
  const state = session.state;
  const item = el("li");
  item.dataset.room = room.name;
  const info = el("div", "room-info");
  const name = el("span", "room-name", `#${room.name}`);
  if (room.private) name.classList.add("private");
  const counts = `${count(room.members, "member")}, ${room.online.toLocaleString("en-US")} online`;
  info.append(name, el("span", "counts", counts));
  if (room.topic) {
    const topic = el("span", "topic-text", room.topic);
    topic.dir = "auto";
    info.append(topic);
  }
  const action = roomAction(state, room.name, state.rooms.has(room.name) ? "Open" : "Join");
  const button = el("button", "join", action.label);
  button.type = "button";
  button.addEventListener("click", () => {
    $("rooms-dialog").close();
    runLine(action.line);
  });
  item.append(info, button);
  return item;
}

async function createRoom(event) {
  event.preventDefault();
  const name = $("create-name").value.trim().replace(/^#/, "");
  const topic = $("create-topic").value.trim() || null;
  const isPrivate = $("create-private").checked;
  if (!/^[A-Za-z0-9_-]{1,32}$/.test(name)) {
    $("create-error").textContent = "a room's name has 1 to 32 letters, digits, _ or -";
    return;
  }
  $("create-error").textContent = "";
  $("create-submit").disabled = true;
  try {
    const reply = await session.request("create", { room: name, topic, private: isPrivate || null });
    const state = session.state;
    $("rooms-dialog").close();
    $("create-form").reset();
    switchTo(state.addRoom(reply.room, []));
    state.note(`you created #${reply.room.name}${reply.room.private ? " (private: /invite people)" : ""}`);
    draw({ force: true });
  } catch (error) {
    $("create-error").textContent = clean(describe(error));
  } finally {
    $("create-submit").disabled = false;
  }
}

function start() {
  $("login-form").addEventListener("submit", submitLogin);
  $("username").addEventListener("change", checkName);
  $("switch-mode").addEventListener("click", () => {
    setMode(!registering);
    $("login-error").textContent = "";
  });
  $("compose").addEventListener("submit", send);
  $("pins").addEventListener("click", showPins);
  $("threads-button").addEventListener("click", showInbox);
  $("thread-close").addEventListener("click", closeThread);
  $("thread-follow").addEventListener("click", () => {
    const thread = session.state.thread;
    if (thread) act(async () => {
      await session.follow(thread, !thread.following);
      draw({ thread: true });
    });
  });
  $("thread-compose").addEventListener("submit", sendInThread);
  $("thread-input").addEventListener("keydown", (event) => {
    if (event.key === "Enter" && !event.shiftKey && !event.isComposing) sendInThread(event);
    else if (event.key === "Escape" && paneEditing !== null) editInPane(null);
    else if (event.key === "Escape") closeThread();
  });
  $("input").addEventListener("keydown", keydown);
  $("input").addEventListener("input", inputChanged);
  $("input").addEventListener("input", () => {
    if (session && session.state) typing.typed(session.state.current, $("input").value, context && context.kind === "edit");
  });
  $("input").addEventListener("paste", pasted);
  $("attach").addEventListener("click", () => $("file-input").click());
  $("file-input").addEventListener("change", () => {
    attach([...$("file-input").files]);
    $("file-input").value = ""; // the same file picked again is a change again
  });
  const main = document.querySelector(".main");
  main.addEventListener("dragenter", dragging);
  main.addEventListener("dragover", dragging);
  main.addEventListener("dragleave", dragLeft);
  main.addEventListener("drop", dropped);
  $("messages").addEventListener("scroll", scrolled);
  $("context-cancel").addEventListener("click", () => setContext(null));
  $("menu").addEventListener("click", (event) => {
    event.stopPropagation();
    document.body.classList.toggle("menu-open");
  });
  $("search-form").addEventListener("submit", search);
  $("results-close").addEventListener("click", closeResults);
  $("browse").addEventListener("click", browseRooms);
  $("rooms-close").addEventListener("click", () => $("rooms-dialog").close());
  $("create-form").addEventListener("submit", createRoom);
  document.querySelector(".main").addEventListener("click", () => document.body.classList.remove("menu-open"));
  document.addEventListener("click", (event) => {
    if (!event.target.closest(".member-menu")) closeMenus();
  });
  document.addEventListener("keydown", (event) => {
    if (event.key !== "Escape" || event.defaultPrevented) return;
    closeMenus();
    document.body.classList.remove("menu-open"); // the phone's drawer
    closeResults();
  });
  window.addEventListener("hashchange", () => {
    const link = linked(window.location.hash);
    if (link && session && session.state) runLine(`/goto ${link}`);
  });
  window.addEventListener("resize", () => session && session.state && drawHeader());
  document.addEventListener("visibilitychange", visibility);
  const login = saved.load();
  if (login === null) {
    showLogin();
    return;
  }
  $("username").value = login.username;
  $("remember").checked = login.remember;
  begin({ username: login.username, token: login.token, remember: login.remember }).catch((error) => {
    if (error.code === "auth_failed") saved.clear();
    showLogin(error.code === "auth_failed" ? "your login has expired: log in again" : loginProblem(error));
  });
}

start();
