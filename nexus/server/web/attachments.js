// A message's files as the page shows them: an image as its thumbnail (a
// click opens it whole in the viewer), anything else as a card with its
// name, size and type and a download button. Their bytes need the
// account's credentials, so the page fetches them and shows them from
// object URLs (never an <img src> on the server), revoked once nothing
// shows them.

import { describe } from "./commands.js";
import { el } from "./dom.js";
import { bareType, humanSize } from "./files.js";
import { clean } from "./state.js";

const $ = (id) => document.getElementById(id);
const THUMB_BOX = 240; // CSS pixels a thumbnail is fitted into
const SAVE_MS = 60000; // how long a downloaded file's object URL outlives the click that saves it
const ICONS = [
  [/^image\//, "🖼"],
  [/^audio\//, "🎵"],
  [/^video\//, "🎬"],
  [/^text\//, "📄"],
  [/pdf$/, "📕"],
  [/zip|tar|gzip|bzip|xz|7z|rar|compress/, "🗜"],
];

const icon = (type) => (ICONS.find(([pattern]) => pattern.test(bareType(type))) || [null, "📎"])[1];

// Saves `blob` as `name` the way a link with `download` would.
function save(blob, name) {
  const url = URL.createObjectURL(blob);
  const link = el("a");
  link.href = url;
  link.download = name;
  link.hidden = true;
  document.body.append(link);
  link.click();
  link.remove();
  setTimeout(() => URL.revokeObjectURL(url), SAVE_MS); // the browser reads it after the click returns
}

export class Attachments {
  // `files()`: the session's Files now (null on a server without them).
  constructor(files) {
    this.files = files;
    this.thumbs = new Map(); // file id -> {url, error}: fetched once however often it is drawn
    this.viewing = null; // {file, opener, url}: what the viewer shows
    $("viewer").addEventListener("click", (event) => {
      if (!event.target.closest("button")) $("viewer").close(); // a click anywhere but its buttons
    });
    $("viewer-close").addEventListener("click", () => $("viewer").close());
    $("viewer-download").addEventListener("click", () => {
      if (this.viewing) this.download(this.viewing.file, $("viewer-download"), $("viewer-status"));
    });
    $("viewer").addEventListener("close", () => this.closed());
  }

  // The files of a message, to go under its text.
  list(files) {
    const box = el("div", "files");
    for (const file of files) box.append(file.width && file.height ? this.thumbnail(file) : this.card(file));
    return box;
  }

  thumbnail(file) {
    const button = el("button", "thumb");
    button.type = "button";
    button.title = clean(`${file.name}, ${humanSize(file.size)}: open`);
    button.setAttribute("aria-label", button.title);
    const image = el("img", "thumb-image");
    image.alt = button.title;
    image.dataset.file = file.id;
    // The size it will have, known before the bytes come: the pane does not
    // jump (and lose its place at the bottom) as thumbnails arrive.
    const scale = Math.min(1, THUMB_BOX / Math.max(file.width, file.height));
    image.width = Math.max(1, Math.round(file.width * scale));
    image.height = Math.max(1, Math.round(file.height * scale));
    button.append(image);
    button.addEventListener("click", () => this.view(file, button));
    this.show(image, file);
    return button;
  }

  card(file) {
    const card = el("div", "file-card");
    const mark = el("span", "file-icon", icon(file.type));
    mark.setAttribute("aria-hidden", "true");
    const info = el("div", "file-info");
    info.append(el("bdi", "file-name", file.name), el("span", "file-meta", `${humanSize(file.size)} · ${bareType(file.type)}`));
    const button = el("button", "file-download", "Download");
    button.type = "button";
    button.setAttribute("aria-label", clean(`download ${file.name}`));
    const status = el("span", "file-status");
    status.setAttribute("role", "status");
    button.addEventListener("click", () => this.download(file, button, status));
    card.append(mark, info, button, status);
    return card;
  }

  // Puts the thumbnail in `image`: at once if it is here, else once fetched
  // (into every image of it drawn by then).
  show(image, file) {
    const known = this.thumbs.get(file.id);
    if (known && known.error) this.broken(image, known.error);
    if (known) {
      if (known.url) image.src = known.url;
      return;
    }
    const entry = { url: null, error: null };
    this.thumbs.set(file.id, entry);
    const files = this.files();
    const fetched = files ? files.blob(files.thumbUrl(file)) : Promise.reject(new Error("this server keeps no files"));
    fetched.then(
      (blob) => {
        if (this.thumbs.get(file.id) !== entry) return; // forgotten meanwhile (logged out)
        entry.url = URL.createObjectURL(blob);
        for (const shown of this.shown(file.id)) shown.src = entry.url;
        this.sweep();
      },
      (error) => {
        if (this.thumbs.get(file.id) !== entry) return;
        entry.error = error;
        for (const shown of this.shown(file.id)) this.broken(shown, error);
        if (error.code === "unreachable") this.thumbs.delete(file.id); // tried again when next drawn
      },
    );
  }

  broken(image, error) {
    const button = image.closest(".thumb");
    button.classList.add("broken");
    button.title = `${button.title} (no thumbnail: ${describe(error)})`;
  }

  shown(id) {
    return [...document.querySelectorAll(`img.thumb-image[data-file="${CSS.escape(id)}"]`)];
  }

  // Revokes the thumbnails no longer drawn; called after each redraw.
  sweep() {
    for (const [id, entry] of this.thumbs) {
      if (entry.url && !this.shown(id).length) {
        URL.revokeObjectURL(entry.url);
        this.thumbs.delete(id);
      }
    }
  }

  // Forgets everything fetched (logging out).
  clear() {
    if ($("viewer").open) $("viewer").close();
    for (const entry of this.thumbs.values()) if (entry.url) URL.revokeObjectURL(entry.url);
    this.thumbs.clear();
  }

  async download(file, button, status) {
    const files = this.files();
    button.disabled = true;
    status.textContent = "downloading…";
    try {
      if (!files) throw new Error("this server keeps no files");
      save(await files.blob(files.url(file)), file.name);
      status.textContent = "";
    } catch (error) {
      status.textContent = `cannot download: ${describe(error)}`;
      status.classList.add("error");
    } finally {
      button.disabled = false;
    }
  }

  // The viewer: the whole image over the page; Escape, a click or Close
  // closes it and gives the focus back to the thumbnail.
  async view(file, opener) {
    const dialog = $("viewer");
    if (dialog.open) dialog.close();
    const viewing = { file, opener, url: null };
    this.viewing = viewing;
    const image = $("viewer-image");
    image.removeAttribute("src");
    image.alt = clean(file.name);
    $("viewer-name").replaceChildren(el("bdi", null, file.name), `, ${humanSize(file.size)}`);
    $("viewer-status").textContent = "loading…";
    $("viewer-status").classList.remove("error");
    dialog.showModal();
    $("viewer-close").focus();
    const files = this.files();
    try {
      if (!files) throw new Error("this server keeps no files");
      const blob = await files.blob(files.url(file));
      if (this.viewing !== viewing) return; // closed, or another opened, meanwhile
      viewing.url = URL.createObjectURL(blob);
      image.src = viewing.url;
      $("viewer-status").textContent = "";
    } catch (error) {
      if (this.viewing !== viewing) return;
      $("viewer-status").textContent = `cannot open: ${describe(error)}`;
      $("viewer-status").classList.add("error");
    }
  }

  closed() {
    const viewing = this.viewing;
    this.viewing = null;
    $("viewer-image").removeAttribute("src");
    if (!viewing) return;
    if (viewing.url) URL.revokeObjectURL(viewing.url);
    if (viewing.opener.isConnected) viewing.opener.focus();
  }
}
