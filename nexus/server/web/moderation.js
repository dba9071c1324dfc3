// Who may do what, as the server decides it (nexus/server/permissions.py and
// protocol-2's moderation rules), so the page offers only the actions that
// will be allowed. The server still decides: a refusal shows as one line.
// Pure: no DOM, no network; roles are read from the ChatState.

import { fold } from "./state.js";

// A role an actor holds, strongest first.
export const ROLES = ["admin", "owner", "moderator", "member"];

const STAFF = ["admin", "owner", "moderator"];
const RULERS = ["admin", "owner"];

// Action -> the roles that may take it at all.
export const RULES = {
  erase: STAFF, // someone else's room message
  topic: STAFF,
  delete: RULERS,
  op: RULERS,
  deop: RULERS,
  kick: STAFF,
  ban: STAFF,
  unban: STAFF,
  bans: STAFF,
  mute: STAFF,
  unmute: STAFF,
  invite: ROLES, // a member of the room
  admin: ["admin"],
  suspend: ["admin"],
  unsuspend: ["admin"],
};

// What the user acted on is, seen from the actor: "self", "admin", "owner",
// "moderator" or "user" (anyone else).
const RESTRICT_BY_RULER = ["moderator", "user"];
const LIFT_BY_RULER = ["admin", "owner", "moderator", "user"];
const RESTRICT = { admin: RESTRICT_BY_RULER, owner: RESTRICT_BY_RULER, moderator: ["user"] };
const LIFT = { admin: LIFT_BY_RULER, owner: LIFT_BY_RULER, moderator: ["admin", "owner", "user"] };

// Targeted action -> acting role -> the targets it may act on. Restricting
// never reaches the owner or an admin, a moderator never acts on another
// moderator, and nobody acts on themselves (but for `admin`).
export const OVER = {
  op: { admin: RESTRICT_BY_RULER, owner: RESTRICT_BY_RULER },
  deop: { admin: RESTRICT_BY_RULER, owner: RESTRICT_BY_RULER },
  kick: RESTRICT,
  ban: RESTRICT,
  mute: RESTRICT,
  unban: LIFT,
  unmute: LIFT,
  admin: { admin: ["self", "admin", "owner", "moderator", "user"] },
  suspend: { admin: ["user"] },
  unsuspend: { admin: ["user"] },
};

// Whether an actor holding the roles `held` (a Set) may take `action`: at
// all (no `target`), or on a user who is `target` to them.
export function allowed(action, held, target = null) {
  const permitted = RULES[action] || [];
  const acting = ROLES.find((role) => held.has(role) && permitted.includes(role));
  if (acting === undefined) return false;
  if (target === null) return true;
  return ((OVER[action] || {})[acting] || []).includes(target);
}

function isOwner(buffer, name) {
  return Boolean(buffer.owner) && fold(buffer.owner) === fold(name);
}

// The roles this user holds in the room `buffer` (a room Buffer).
function myRoles(state, buffer) {
  const held = new Set();
  if (state.isAdmin(state.me)) held.add("admin");
  if (isOwner(buffer, state.me)) held.add("owner");
  if (buffer.moderators.has(fold(state.me))) held.add("moderator");
  if (state.rooms.get(buffer.name) === buffer) held.add("member");
  return held;
}

// What `name` is to this user: themself, or their strongest role (in the
// room `buffer`; server-wide without one).
function targetOf(state, buffer, name) {
  if (state.isMe(name)) return "self";
  if (state.isAdmin(name)) return "admin";
  if (buffer && isOwner(buffer, name)) return "owner";
  if (buffer && buffer.moderators.has(fold(name))) return "moderator";
  return "user";
}

// Whether this user may take `action` in the room (on `name`, if given).
export function may(state, buffer, action, name = null) {
  return allowed(action, myRoles(state, buffer), name === null ? null : targetOf(state, buffer, name));
}

// The moderation actions offered on a member of a room, in menu order; each
// is the command's name (the same as the slash command).
export function offered(state, buffer, name) {
  const muted = buffer.muted.has(fold(name));
  const moderator = buffer.moderators.has(fold(name));
  const actions = [moderator ? "deop" : "op", muted ? "unmute" : "mute", "kick", "ban"].filter(
    (action) => may(state, buffer, action, name),
  );
  const server = new Set(state.isAdmin(state.me) ? ["admin"] : []); // no room's roles
  if (allowed("suspend", server, targetOf(state, null, name))) actions.push("suspend");
  return actions;
}
