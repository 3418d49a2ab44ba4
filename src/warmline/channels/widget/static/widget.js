/* Warmline chat widget: one <script> tag renders Microsoft's Web Chat as a floating chat button.
 *
 * Data attributes on the script tag:
 *   data-widget-id, data-base-url, data-mode ("omnichannel" | "bot-only"),
 *   data-context-provider / data-auth-token-provider: names of global functions (may be async),
 *   data-open="true" to open at once, data-locale to set Web Chat's locale.
 * The same hooks exist as an API: window.Warmline.setContextProvider(fn),
 * window.Warmline.setAuthTokenProvider(fn), window.Warmline.open().
 */
(function () {
  "use strict";
  if (window.Warmline && window.Warmline.__loaded) { return; }

  var script = document.currentScript || document.querySelector("script[data-widget-id]");
  var config = {
    widgetId: script.getAttribute("data-widget-id"),
    baseUrl: (script.getAttribute("data-base-url") || new URL(script.src).origin).replace(/\/$/, ""),
    mode: script.getAttribute("data-mode") || "omnichannel",
    locale: script.getAttribute("data-locale") || navigator.language || "en-US",
  };
  var providers = {
    context: globalFunction(script.getAttribute("data-context-provider")),
    authToken: globalFunction(script.getAttribute("data-auth-token-provider")),
  };
  var state = { opened: false, panel: null, notice: null };

  function globalFunction(name) {
    if (!name) { return null; }
    return function () {
      var fn = window[name];
      if (typeof fn !== "function") { throw new Error("Warmline: no global function '" + name + "'"); }
      return fn();
    };
  }

  function el(tag, attrs, text) {
    var node = document.createElement(tag);
    Object.keys(attrs || {}).forEach(function (key) { node.setAttribute(key, attrs[key]); });
    if (text) { node.textContent = text; }
    return node;
  }

  function style() {
    var css = [
      ".wl-button{position:fixed;right:24px;bottom:24px;z-index:2147483000;border:0;border-radius:28px;",
      "padding:14px 20px;background:#2563eb;color:#fff;font:600 15px system-ui,sans-serif;cursor:pointer;",
      "box-shadow:0 6px 20px rgba(0,0,0,.25)}",
      ".wl-panel{position:fixed;right:24px;bottom:88px;z-index:2147483000;width:380px;height:560px;",
      "max-height:calc(100vh - 112px);display:flex;flex-direction:column;background:#fff;border-radius:12px;",
      "overflow:hidden;box-shadow:0 10px 40px rgba(0,0,0,.3);font-family:system-ui,sans-serif}",
      ".wl-header{background:#2563eb;color:#fff;padding:12px 16px;font-weight:600;display:flex;",
      "justify-content:space-between;align-items:center}",
      ".wl-close{background:none;border:0;color:#fff;font-size:20px;cursor:pointer}",
      ".wl-notice{padding:8px 12px;font-size:13px;background:#fff4e5;border-bottom:1px solid #f5d9a8}",
      ".wl-notice[hidden]{display:none}",
      ".wl-chat{flex:1;min-height:0}",
    ].join("");
    document.head.appendChild(el("style", { "data-warmline": "" }, css));
  }

  function notify(text, kind) {
    state.notice.textContent = text;
    state.notice.setAttribute("data-kind", kind || "info");
    state.notice.hidden = !text;
  }

  function loadWebChat() {
    if (window.WebChat) { return Promise.resolve(window.WebChat); }
    return new Promise(function (resolve, reject) {
      var tag = el("script", { src: config.baseUrl + "/widgets/static/vendor/webchat.js" });
      tag.onload = function () { resolve(window.WebChat); };
      tag.onerror = function () { reject(new Error("could not load Web Chat")); };
      document.head.appendChild(tag);
    });
  }

  function call(provider) {
    if (!provider) { return Promise.resolve(undefined); }
    try { return Promise.resolve(provider()); } catch (error) { return Promise.reject(error); }
  }

  function startSession() {
    var body = { mode: config.mode, locale: config.locale };
    return call(providers.context)
      .then(function (context) { if (context) { body.context = context; } })
      .then(function () { return call(providers.authToken); })
      .catch(function (error) { notify("Sign-in skipped: " + error.message, "warning"); })
      .then(function (token) { if (token) { body.authToken = token; } })
      .then(function () {
        return fetch(config.baseUrl + "/widgets/" + encodeURIComponent(config.widgetId) + "/conversations", {
          method: "POST",
          headers: { "Content-Type": "application/json" },
          body: JSON.stringify(body),
        });
      })
      .then(function (response) {
        return response.json().then(function (data) {
          if (!response.ok) {
            var message = data && data.error ? data.error.message : "HTTP " + response.status;
            throw new Error(message);
          }
          return data;
        });
      });
  }

  function render(session, WebChat) {
    var notes = [];
    if (session.signIn.status === "failed") {
      notes.push("You're chatting as a guest: " + session.signIn.reason + ".");
    } else if (session.signIn.status === "signed-in") {
      notes.push("Signed in as " + (session.user.name || session.user.id) + ".");
    }
    if (session.warning) { notes.push(session.warning); }
    notify(notes.join(" "), session.signIn.status === "failed" ? "warning" : "info");
    state.panel.setAttribute("data-sign-in", session.signIn.status);
    var directLine = WebChat.createDirectLine({ token: session.token, domain: session.domain });
    WebChat.renderWebChat({
      directLine: directLine,
      userID: session.user.id,
      username: session.user.name || undefined,
      locale: config.locale,
      // The agent sees "customer is typing…" in the workspace.
      sendTypingIndicator: true,
    }, state.panel.querySelector(".wl-chat"));
    window.Warmline.directLine = directLine;
    window.Warmline.session = { conversationId: session.conversationId, user: session.user, signIn: session.signIn };
  }

  function open() {
    if (state.opened) { state.panel.hidden = false; return Promise.resolve(); }
    state.opened = true;
    state.panel.hidden = false;
    return Promise.all([startSession(), loadWebChat()])
      .then(function (results) { render(results[0], results[1]); })
      .catch(function (error) {
        state.opened = false;
        notify("Chat is unavailable: " + error.message, "error");
      });
  }

  function build() {
    style();
    var button = el("button", { type: "button", class: "wl-button", "aria-label": "Open chat" }, "Chat with us");
    var panel = el("section", { class: "wl-panel", "aria-label": "Chat", hidden: "" });
    var header = el("div", { class: "wl-header" }, "");
    header.appendChild(el("span", {}, "Chat"));
    var close = el("button", { type: "button", class: "wl-close", "aria-label": "Close chat" }, "×");
    close.onclick = function () { panel.hidden = true; };
    header.appendChild(close);
    state.notice = el("div", { class: "wl-notice", role: "status", hidden: "" });
    panel.appendChild(header);
    panel.appendChild(state.notice);
    panel.appendChild(el("div", { class: "wl-chat" }));
    button.onclick = function () { if (panel.hidden) { open(); } else { panel.hidden = true; } };
    document.body.appendChild(panel);
    document.body.appendChild(button);
    state.panel = panel;
    if (script.getAttribute("data-open") === "true") { open(); }
  }

  window.Warmline = {
    __loaded: true,
    config: config,
    open: open,
    setContextProvider: function (fn) { providers.context = fn; },
    setAuthTokenProvider: function (fn) { providers.authToken = fn; },
  };
  if (document.body) { build(); } else { document.addEventListener("DOMContentLoaded", build); }
})();
