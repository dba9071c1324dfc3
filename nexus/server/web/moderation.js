// Who may do what, as the server decides it, so the page offers only the
// actions that will be allowed. The table is the server's own: the server
// makes /permissions.json from nexus/server/permissions.py (RULES and OVER)
// when it starts, and this module reads it before the page starts, so the
// two cannot drift apart. The server still decides: a refusal shows as one
// line. No DOM; roles are read from the ChatState.

import { fold } from "./state.js";

// Without the table (it could not be read), nothing is offered: the typed
// commands still work, and the server still decides.
const NOTHING = { roles: ["admin", "owner", "moderator", "member"], rules: {}, over: {} };
const TABLE = await fetch("/permissions.json")
  .then((response) => (response.ok ? response.json() : NOTHING))
  .catch(() => NOTHING);

// A role an actor holds, strongest first.
export const ROLES = TABLE.roles;

// Action -> the roles that may take it at all.
export const RULES = TABLE.rules;

// Targeted action -> acting role -> what the user acted on may be to the
// actor: "self", "admin", "owner", "moderator" or "user" (anyone else).
export const OVER = TABLE.over;

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
