// Files over HTTP beside the chat stream (protocol.md, "Extension: files"):
// uploads, downloads and thumbnails, each request with the account's Basic
// credentials (the login token). No DOM here beyond what a request needs.

export class FileError extends Error {
  constructor(code, message, status = 0) {
    super(message);
    this.code = code;
    this.status = status;
  }
}

// Sizes as people read them: 812 B, 3.4 KB, 25 MB (powers of 1,024).
export function humanSize(bytes) {
  const units = ["B", "KB", "MB", "GB", "TB"];
  let value = bytes;
  let unit = 0;
  while (value >= 1024 && unit < units.length - 1) {
    value /= 1024;
    unit += 1;
  }
  const shown = unit === 0 || value >= 10 ? Math.round(value) : Math.round(value * 10) / 10;
  return `${shown.toLocaleString("en-US")} ${units[unit]}`;
}

// A file's type without its parameters: `text/plain`, not `text/plain; charset=utf-8`.
export const bareType = (type) => String(type || "").split(";")[0].trim() || "unknown type";

// RFC 8187 (`filename*=UTF-8''...`): every name, any script, travels intact.
const extValue = (name) =>
  encodeURIComponent(name).replace(/['()*]/g, (c) => `%${c.charCodeAt(0).toString(16).toUpperCase()}`);

const basic = (username, secret) => {
  const bytes = new TextEncoder().encode(`${username}:${secret}`);
  return `Basic ${btoa(String.fromCharCode(...bytes))}`;
};

// What a refusal says: the server's JSON error, or the status alone.
function refusal(status, body) {
  try {
    const { error } = JSON.parse(body);
    if (error && error.code) return new FileError(error.code, error.message, status);
  } catch {
    // not the protocol's form: a proxy's page, say
  }
  return new FileError(`http_${status}`, `the server answered ${status}`, status);
}

export class Files {
  // `info`: hello's `files`; `credentials()`: [username, token] as they are now.
  constructor(info, credentials) {
    // Requests go to the page's own origin, at the path hello names: hello
    // spells the address the connection came to, which may not be the host
    // in the address bar, and the page may talk only to its own origin (CSP).
    const path = new URL(info.url, window.location.href).pathname;
    this.base = new URL(path, window.location.origin).href.replace(/\/$/, "");
    this.maxUpload = info.max_upload;
    this.credentials = credentials;
  }

  authorization() {
    return basic(...this.credentials());
  }

  url(file) {
    return `${this.base}/${encodeURIComponent(file.id)}/${encodeURIComponent(file.name)}`;
  }

  thumbUrl(file) {
    return `${this.base}/${encodeURIComponent(file.id)}/thumb`;
  }

  // Uploads `blob` as `name` with XMLHttpRequest, whose upload progress
  // fetch() does not give. Returns {done: the server's record of it, abort()};
  // `done` rejects with a FileError (`aborted` when abort() ended it).
  upload(blob, name, onProgress) {
    const xhr = new XMLHttpRequest();
    const done = new Promise((resolve, reject) => {
      xhr.upload.addEventListener("progress", (event) => onProgress(event.loaded, blob.size));
      xhr.addEventListener("load", () => {
        if (xhr.status === 201) {
          try {
            resolve(JSON.parse(xhr.responseText));
            return;
          } catch {
            // fall through: an answer that is not the server's
          }
        }
        reject(refusal(xhr.status, xhr.responseText));
      });
      xhr.addEventListener("error", () => {
        reject(new FileError("unreachable", "the upload was cut off: cannot reach the server"));
      });
      xhr.addEventListener("abort", () => reject(new FileError("aborted", "cancelled")));
      xhr.open("POST", this.base);
      xhr.setRequestHeader("Authorization", this.authorization());
      xhr.setRequestHeader("Content-Disposition", `attachment; filename*=UTF-8''${extValue(name)}`);
      xhr.send(blob);
    });
    return { done, abort: () => xhr.abort() };
  }

  // The bytes at `url` (a file or a thumbnail), with the credentials.
  async blob(url) {
    let response;
    try {
      response = await fetch(url, { headers: { Authorization: this.authorization() }, cache: "no-store" });
    } catch {
      throw new FileError("unreachable", "cannot reach the server");
    }
    if (!response.ok) throw refusal(response.status, await response.text());
    return response.blob();
  }
}
