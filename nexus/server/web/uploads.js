// Files attached from the input (picked, dropped or pasted), above it while
// they go up: a file past the server's limit is refused here, before a byte
// is sent; the others upload, each with a progress bar and Cancel, and once
// all of them are up one message shares them, with the text the input held.
// What fails stays listed, saying why, until dismissed.

import { describe } from "./commands.js";
import { el } from "./dom.js";
import { humanSize } from "./files.js";
import { clean, count } from "./state.js";

const PER_MESSAGE = 10; // the protocol's most files in one message

export class Uploads {
  // `files()`: the session's Files now; `caption()`: takes the input's text
  // to go with the files ("" when it is not plain text); `share(buffer, text,
  // ids)` sends the message; `giveBack(text)` returns a caption unsent.
  constructor(tray, { files, caption, share, giveBack }) {
    this.tray = tray;
    this.files = files;
    this.caption = caption;
    this.share = share;
    this.giveBack = giveBack;
    this.running = new Set(); // the uploads going on: {abort}
  }

  async attach(blobs, buffer) {
    const files = this.files();
    if (!files || !blobs.length) return;
    this.tray.querySelectorAll(".upload.failed").forEach((row) => row.remove());
    const accepted = [];
    for (const blob of blobs) {
      const name = blob.name || "file";
      if (blob.size > files.maxUpload) {
        const sizes = `${humanSize(blob.size)}, and the server takes files of at most ${humanSize(files.maxUpload)}`;
        this.failed(name, `${name} was not sent: it has ${sizes}`);
      } else if (accepted.length === PER_MESSAGE) {
        this.failed(name, `${name} was not sent: a message carries at most ${count(PER_MESSAGE, "file")}`);
      } else {
        accepted.push(blob);
      }
    }
    if (!accepted.length) return;
    const text = this.caption();
    const results = await Promise.allSettled(accepted.map((blob) => this.upload(files, blob, buffer)));
    const ids = results.filter((r) => r.status === "fulfilled").map((r) => r.value.id);
    if (ids.length) this.share(buffer, text, ids);
    else if (text) this.giveBack(text);
  }

  // One file up, its row showing how far; resolves with the server's record.
  async upload(files, blob, buffer) {
    const name = blob.name || "file";
    const row = el("li", "upload");
    const bar = el("progress");
    bar.max = Math.max(blob.size, 1);
    bar.value = 0;
    bar.setAttribute("aria-label", clean(`uploading ${name} to ${buffer.label}`));
    const said = el("span", "upload-said", `0% of ${humanSize(blob.size)}`);
    const cancel = el("button", "link upload-cancel", "Cancel");
    cancel.type = "button";
    cancel.setAttribute("aria-label", clean(`cancel the upload of ${name}`));
    row.append(el("bdi", "upload-name", name), bar, said, cancel);
    this.tray.append(row);
    this.tray.hidden = false;
    const upload = files.upload(blob, name, (loaded, total) => {
      bar.value = loaded;
      said.textContent = `${Math.floor((100 * loaded) / Math.max(total, 1))}% of ${humanSize(total)}`;
    });
    cancel.addEventListener("click", () => upload.abort());
    this.running.add(upload);
    try {
      return await upload.done;
    } catch (error) {
      if (error.code !== "aborted") this.failed(name, `${name} was not sent: ${why(error, files.maxUpload)}`);
      throw error;
    } finally {
      this.running.delete(upload);
      row.remove();
      this.tidy();
    }
  }

  // A line saying what went wrong, kept until dismissed.
  failed(name, text) {
    const row = el("li", "upload failed");
    row.setAttribute("role", "alert");
    const dismiss = el("button", "link upload-dismiss", "Dismiss");
    dismiss.type = "button";
    dismiss.setAttribute("aria-label", clean(`dismiss the error about ${name}`));
    dismiss.addEventListener("click", () => {
      row.remove();
      this.tidy();
    });
    row.append(el("span", "upload-error", text), dismiss);
    this.tray.append(row);
    this.tray.hidden = false;
  }

  tidy() {
    this.tray.hidden = this.tray.children.length === 0;
  }

  // Ends every upload and forgets every line (logging out).
  clear() {
    for (const upload of this.running) upload.abort();
    this.tray.replaceChildren();
    this.tidy();
  }
}

// Why the server refused an upload, in words.
function why(error, maxUpload) {
  switch (error.code) {
    case "too_large":
      return `the server takes files of at most ${humanSize(maxUpload)} (too_large)`;
    case "quota_exceeded":
      return "your files would take more room than the server gives each account (quota_exceeded)";
    case "auth_required":
    case "auth_failed":
      return `the server did not take your login for files (${error.code}): log in again`;
    default:
      return describe(error);
  }
}
