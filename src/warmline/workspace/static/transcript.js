// Shared by the agent and supervisor pages: the JSON API, the live feed and transcript rendering.
// Entry HTML is rendered (and sanitised) by the server; everything else goes in as text.
(function () {
  "use strict";

  var csrfMeta = document.querySelector('meta[name="csrf-token"]');
  var csrf = csrfMeta ? csrfMeta.getAttribute("content") : "";

  function status(text) {
    var box = document.getElementById("status");
    if (!box) { return; }
    box.textContent = text || "";
    box.hidden = !text;
  }

  function api(method, path, body) {
    var options = {
      method: method,
      credentials: "same-origin",
      headers: { "X-CSRF-Token": csrf, "Accept": "application/json" },
    };
    if (body !== undefined) {
      options.headers["Content-Type"] = "application/json";
      options.body = JSON.stringify(body);
    }
    return fetch("/api/workspace" + path, options).then(function (response) {
      if (response.status === 401) {
        window.location.href = "/workspace/login";
        throw new Error("Your session has ended; sign in again.");
      }
      if (response.status === 204) { return null; }
      return response.json().then(function (data) {
        if (!response.ok) {
          throw new Error(data && data.error ? data.error.message : "HTTP " + response.status);
        }
        return data;
      });
    });
  }

  function el(tag, className, text) {
    var node = document.createElement(tag);
    if (className) { node.className = className; }
    if (text !== undefined && text !== null) { node.textContent = text; }
    return node;
  }

  var LABELS = { customer: "Customer", bot: "Bot", agent: "Agent", system: "System", note: "Private note" };

  function renderEntry(entry) {
    var item = el("li", "entry role-" + entry.role + " kind-" + entry.kind);
    item.setAttribute("data-seq", String(entry.seq));
    item.setAttribute("data-role", entry.role);
    var meta = el("div", "meta");
    var label = LABELS[entry.role] || entry.role;
    if ((entry.role === "agent" || entry.role === "note") && entry.from) { label += " · " + entry.from; }
    if (entry.role === "customer" && entry.from) { label += " · " + entry.from; }
    meta.appendChild(el("span", "speaker", label));
    if (entry.timestamp) {
      var time = el("time", "when", new Date(entry.timestamp).toLocaleTimeString());
      time.setAttribute("datetime", entry.timestamp);
      meta.appendChild(time);
    }
    item.appendChild(meta);
    var body = el("div", "text");
    body.innerHTML = entry.html || "";  // server-rendered: Markdown with raw HTML disabled, or escaped text
    item.appendChild(body);
    (entry.attachments || []).forEach(function (attachment) {
      var box = el("div", "attachment " + attachment.kind);
      if (attachment.kind === "card") {
        (attachment.lines || []).forEach(function (line) { box.appendChild(el("p", null, line)); });
      } else if (attachment.url) {
        var link = el("a", null, attachment.name || attachment.contentType);
        link.href = attachment.url;
        link.target = "_blank";
        link.rel = "noopener noreferrer";
        box.appendChild(link);
      } else {
        box.textContent = (attachment.name || "attachment") + " (" + attachment.contentType + ")";
      }
      item.appendChild(box);
    });
    if (entry.suggested && entry.suggested.length) {
      var chips = el("div", "suggested");
      entry.suggested.forEach(function (title) { chips.appendChild(el("span", "chip", title)); });
      item.appendChild(chips);
    }
    return item;
  }

  // Append entries past what the list already shows; returns the highest sequence number shown.
  function appendEntries(list, entries) {
    var last = Number(list.getAttribute("data-last-seq") || "0");
    entries.forEach(function (entry) {
      if (entry.seq <= last) { return; }
      list.appendChild(renderEntry(entry));
      last = entry.seq;
    });
    list.setAttribute("data-last-seq", String(last));
    list.scrollTop = list.scrollHeight;
    return last;
  }

  // The live feed, reconnecting with a growing pause; `onOpen` re-watches what the page shows.
  function connect(onMessage, onOpen) {
    var delay = 500;
    var feed = { socket: null, send: function (message) {
      if (feed.socket && feed.socket.readyState === WebSocket.OPEN) { feed.socket.send(JSON.stringify(message)); }
    } };
    function open() {
      var scheme = window.location.protocol === "https:" ? "wss://" : "ws://";
      var socket = new WebSocket(scheme + window.location.host + "/workspace/stream");
      feed.socket = socket;
      socket.onopen = function () { delay = 500; status(""); document.body.setAttribute("data-live", "yes"); onOpen(); };
      socket.onmessage = function (event) {
        var message;
        try { message = JSON.parse(event.data); } catch (error) { return; }
        onMessage(message);
      };
      socket.onclose = function (event) {
        document.body.setAttribute("data-live", "no");
        if (event.code === 4001) { window.location.href = "/workspace/login"; return; }
        status("Live updates interrupted; reconnecting…");
        setTimeout(open, delay);
        delay = Math.min(delay * 2, 10000);
      };
    }
    open();
    return feed;
  }

  window.WarmlineWorkspace = {
    api: api, el: el, status: status, renderEntry: renderEntry, appendEntries: appendEntries, connect: connect,
  };
})();
