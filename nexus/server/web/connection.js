// One WebSocket to the server: requests matched to their replies by id, events
// handed on. No UI here; the session (session.js) decides what to do with it.

export class ServerError extends Error {
  constructor(error) {
    super(error.message);
    this.code = error.code;
    this.retryAfter = error.retry_after;
  }
}

export class ConnectionClosed extends Error {
  constructor() {
    super("the connection is down");
  }
}

export function serverUrl(location) {
  const scheme = location.protocol === "https:" ? "wss:" : "ws:";
  return `${scheme}//${location.host}/ws`;
}

export class Connection {
  // `onEvent(frame)` gets every event; `onClose(reason)` once, when it ends.
  constructor(url, { onEvent, onClose }) {
    this.url = url;
    this.onEvent = onEvent;
    this.onClose = onClose;
    this.pending = new Map(); // id -> {resolve, reject}
    this.nextId = 1;
    this.hello = null;
    this.closed = false;
    this.refusal = null; // an error frame without id: why the server closed
  }

  // Resolves with the server's hello, or rejects if it never comes.
  open(timeoutMs = 10000) {
    return new Promise((resolve, reject) => {
      const socket = new WebSocket(this.url);
      this.socket = socket;
      const timer = setTimeout(() => {
        reject(new Error("the server did not answer"));
        socket.close();
      }, timeoutMs);
      socket.addEventListener("message", (message) => {
        let frame;
        try {
          frame = JSON.parse(message.data);
        } catch {
          return; // the server sends JSON only
        }
        if (this.hello === null && frame.event === "hello") {
          this.hello = frame;
          clearTimeout(timer);
          resolve(frame);
          return;
        }
        this.dispatch(frame);
      });
      socket.addEventListener("close", () => {
        clearTimeout(timer);
        this.finish();
        reject(this.refusal ? new ServerError(this.refusal) : new ConnectionClosed());
      });
      socket.addEventListener("error", () => {}); // a close event follows
    });
  }

  dispatch(frame) {
    if ("ok" in frame) {
      const waiter = frame.id == null ? undefined : this.pending.get(frame.id);
      if (waiter === undefined) {
        if (!frame.ok) this.refusal = frame.error; // said outside any request
        return;
      }
      this.pending.delete(frame.id);
      if (frame.ok) waiter.resolve(frame);
      else waiter.reject(new ServerError(frame.error));
    } else if ("event" in frame) {
      this.onEvent(frame);
    }
  }

  // The reply to `cmd`; rejects with ServerError or ConnectionClosed.
  request(cmd, args = {}) {
    if (this.closed || this.socket.readyState !== WebSocket.OPEN) {
      return Promise.reject(new ConnectionClosed());
    }
    const id = this.nextId++;
    const frame = { id, cmd };
    for (const [key, value] of Object.entries(args)) {
      if (value !== undefined && value !== null) frame[key] = value;
    }
    return new Promise((resolve, reject) => {
      this.pending.set(id, { resolve, reject });
      this.socket.send(JSON.stringify(frame));
    });
  }

  close() {
    if (this.socket) this.socket.close(1000);
    this.finish();
  }

  finish() {
    if (this.closed) return;
    this.closed = true;
    for (const waiter of this.pending.values()) waiter.reject(new ConnectionClosed());
    this.pending.clear();
    this.onClose(this.refusal);
  }
}
