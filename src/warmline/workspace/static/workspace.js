// The agent workspace: presence, offers with a countdown, conversations in tabs, live messaging.
(function () {
  "use strict";

  var W = window.WarmlineWorkspace;
  var api = W.api, el = W.el;
  var me = null;
  var tabs = {};          // conversation id -> {tab, panel, list, lastSeq, view, typingTimer, lastTyping}
  var activeId = null;
  var offers = {};        // offer id -> {node, deadline}
  var feed = null;

  function fail(error) { W.status(error.message || String(error)); }

  function clone(id) { return document.getElementById(id).content.firstElementChild.cloneNode(true); }

  // --- presence ----------------------------------------------------------------------------------

  var presence = document.getElementById("presence");
  var presenceVersion = 0;  // bumped by every change, so a slower /me answer cannot undo a newer one
  presence.addEventListener("change", function () {
    showPresence(presence.value);
    api("PUT", "/presence", { presence: presence.value }).then(function () { W.status(""); }).catch(fail);
  });

  function showPresence(value) {
    presenceVersion += 1;
    me.presence = value;
    if (presence.querySelector('option[value="' + CSS.escape(value) + '"]')) { presence.value = value; }
    document.body.setAttribute("data-presence", value);
  }

  function renderPresence() {
    var known = {};
    presence.textContent = "";
    me.presences.forEach(function (item) {
      var option = el("option", null, item.name === item.base ? item.name : item.name + " (" + item.base + ")");
      option.value = item.name;
      presence.appendChild(option);
      known[item.name] = true;
    });
    if (known[me.presence]) { presence.value = me.presence; }
    document.body.setAttribute("data-presence", me.presence);
  }

  // --- offers ------------------------------------------------------------------------------------

  var offersBox = document.getElementById("offers");

  function renderOffers(list) {
    var seen = {};
    list.forEach(function (offer) {
      seen[offer.id] = true;
      if (offers[offer.id]) { return; }
      var node = clone("offer-template");
      node.setAttribute("data-offer", offer.id);
      node.querySelector(".offer-customer").textContent = offer.customer;
      node.querySelector(".offer-queue").textContent = offer.queueName;
      node.querySelector(".offer-language").textContent = offer.language || "unknown";
      if (offer.transferNote) {
        var note = node.querySelector(".offer-note");
        note.textContent = "Transfer note: " + offer.transferNote;
        note.hidden = false;
      }
      node.querySelector(".accept").addEventListener("click", function () { accept(offer); });
      node.querySelector(".reject").addEventListener("click", function () { reject(offer); });
      offersBox.appendChild(node);
      offers[offer.id] = { node: node, deadline: Date.now() + offer.secondsLeft * 1000 };
    });
    Object.keys(offers).forEach(function (id) {
      if (!seen[id]) { offers[id].node.remove(); delete offers[id]; }
    });
    tick();
  }

  function tick() {
    Object.keys(offers).forEach(function (id) {
      var left = Math.max(0, Math.ceil((offers[id].deadline - Date.now()) / 1000));
      var countdown = offers[id].node.querySelector(".countdown");
      countdown.textContent = "Expires in " + left + " s";
      countdown.setAttribute("data-seconds", String(left));
      if (left === 0) { offers[id].node.remove(); delete offers[id]; }
    });
  }
  setInterval(tick, 250);

  function refreshOffers() { return api("GET", "/offers").then(renderOffers).catch(fail); }

  function accept(offer) {
    api("POST", "/offers/" + encodeURIComponent(offer.id) + "/accept").then(function (result) {
      if (offers[offer.id]) { offers[offer.id].node.remove(); delete offers[offer.id]; }
      return refreshMe().then(function () { select(result.conversation); });
    }).catch(function (error) { fail(error); refreshOffers(); });
  }

  function reject(offer) {
    api("POST", "/offers/" + encodeURIComponent(offer.id) + "/reject").then(function () {
      if (offers[offer.id]) { offers[offer.id].node.remove(); delete offers[offer.id]; }
    }).catch(function (error) { fail(error); refreshOffers(); });
  }

  // --- tabs --------------------------------------------------------------------------------------

  var tabList = document.getElementById("tabs");
  var area = document.getElementById("conversations");

  function select(id) {
    if (!tabs[id]) { return; }
    activeId = id;
    Object.keys(tabs).forEach(function (key) {
      var on = key === id;
      tabs[key].tab.setAttribute("aria-selected", on ? "true" : "false");
      tabs[key].panel.hidden = !on;
    });
  }

  function openTab(summary) {
    if (tabs[summary.id]) { return tabs[summary.id]; }
    var tab = el("button", "tab", summary.customer);
    tab.type = "button";
    tab.setAttribute("role", "tab");
    tab.setAttribute("data-conversation", summary.id);
    tab.addEventListener("click", function () { select(summary.id); });
    tabList.appendChild(tab);
    var panel = clone("conversation-template");
    panel.setAttribute("data-conversation", summary.id);
    panel.hidden = true;
    area.appendChild(panel);
    document.getElementById("no-conversations").hidden = true;
    var entry = { tab: tab, panel: panel, list: panel.querySelector(".transcript"), lastSeq: 0, view: null, lastTyping: 0 };
    tabs[summary.id] = entry;
    wire(summary.id, entry);
    load(summary.id);
    if (!activeId) { select(summary.id); }
    return entry;
  }

  function syncTabs(list) { list.forEach(openTab); }

  function load(id) {
    var entry = tabs[id];
    return api("GET", "/conversations/" + encodeURIComponent(id)).then(function (view) {
      entry.view = view;
      W.appendEntries(entry.list, view.transcript);
      entry.lastSeq = Math.max(entry.lastSeq, view.conversation.lastSeq);
      fill(entry, view);
      if (feed) { feed.send({ type: "watch", conversation: id, after: entry.lastSeq }); }
    }).catch(function (error) {
      // Transferred or handed back: the conversation is no longer ours to see.
      gone(entry, error.message);
    });
  }

  function gone(entry, text) {
    entry.panel.classList.add("gone");
    entry.panel.querySelector(".live-tools").hidden = true;
    entry.panel.querySelector(".note-form").hidden = true;
    entry.panel.querySelector(".tools").hidden = true;
    entry.panel.querySelector(".wrap-up").hidden = true;
    var note = entry.panel.querySelector(".closed-note");
    note.textContent = text;
    note.hidden = false;
    entry.tab.classList.add("gone");
  }

  function row(dl, term, value) {
    if (value === null || value === undefined || value === "") { return; }
    dl.appendChild(el("dt", null, term));
    dl.appendChild(el("dd", null, String(value)));
  }

  function fill(entry, view) {
    var panel = entry.panel, c = view.conversation, can = view.can;
    panel.querySelector(".customer").textContent = c.customer;
    entry.tab.textContent = c.customer;
    var badge = panel.querySelector(".state");
    badge.textContent = c.state;
    badge.setAttribute("data-state", c.state);
    panel.setAttribute("data-state", c.state);
    panel.querySelector(".where").textContent = [c.queueName, c.language, c.channel].filter(Boolean).join(" · ");
    panel.querySelector(".message-to-agent").textContent = view.messageToAgent || "(none)";

    var routing = panel.querySelector(".routing-list");
    routing.textContent = "";
    row(routing, "Queue", view.routing.queue);
    row(routing, "Reason", view.routing.reason);
    row(routing, "Last topic", view.routing.lastTopic);
    row(routing, "Last phrase", view.routing.lastPhrase);
    row(routing, "Transfer note", view.routing.transferNote);

    var context = panel.querySelector(".context-table tbody");
    context.textContent = "";
    view.context.forEach(function (item) {
      var tr = el("tr", item.displayable ? "displayable" : "hidden-variable");
      tr.appendChild(el("th", null, item.name));
      tr.appendChild(el("td", null, item.value));
      context.appendChild(tr);
    });
    panel.querySelector(".no-context").hidden = view.context.length > 0;
    var va = panel.querySelector(".va-table tbody");
    va.textContent = "";
    view.vaContext.forEach(function (item) {
      var tr = el("tr", "va");
      tr.appendChild(el("th", null, item.name));
      tr.appendChild(el("td", null, item.value));
      va.appendChild(tr);
    });
    panel.querySelector(".handoff-context").hidden = view.vaContext.length === 0;

    var variables = panel.querySelector(".variables-table tbody");
    variables.textContent = "";
    view.variables.forEach(function (item) {
      var name = (item.scope === "global" ? "Global." : "Topic.") + item.name;
      var tr = el("tr", "scope-" + item.scope);
      tr.setAttribute("data-variable", name);
      tr.appendChild(el("th", null, name));
      tr.appendChild(el("td", null, item.value));
      tr.appendChild(el("td", "type", item.type));
      variables.appendChild(tr);
    });

    panel.querySelector(".live-tools").hidden = !can.send;
    panel.querySelector(".note-form").hidden = !can.note;
    panel.querySelector(".transfer").hidden = !can.transfer;
    panel.querySelector(".consult").hidden = !can.consult;
    panel.querySelector(".return-to-bot").hidden = !can.returnToBot;
    panel.querySelector(".end").hidden = !can.end;
    panel.querySelector(".tools").hidden = !(can.transfer || can.consult || can.end || can.returnToBot);
    panel.querySelector(".wrap-up").hidden = !can.wrapUp;
    var closed = panel.querySelector(".closed-note");
    if (c.state === "closed") {
      closed.textContent = "Closed" + (view.wrapUp ? " — " + view.wrapUp.disposition : "") + ".";
      closed.hidden = false;
    } else if (c.relation === "consult") {
      closed.textContent = "You are consulting: only agents see your notes.";
      closed.hidden = false;
    } else {
      closed.hidden = true;
    }
    fillMenus(panel);
  }

  function fillMenus(panel) {
    var target = panel.querySelector(".transfer select");
    if (!target.options.length) {
      me.queues.forEach(function (queue) {
        var option = el("option", null, "Queue: " + queue.name);
        option.value = "queue:" + queue.id;
        target.appendChild(option);
      });
      me.agents.forEach(function (agent) {
        var option = el("option", null, "Agent: " + agent.name);
        option.value = "agent:" + agent.id;
        target.appendChild(option);
      });
    }
    var consult = panel.querySelector(".consult select");
    if (!consult.options.length) {
      me.agents.forEach(function (agent) {
        var option = el("option", null, agent.name);
        option.value = agent.id;
        consult.appendChild(option);
      });
    }
    var disposition = panel.querySelector(".wrap-up select");
    if (!disposition.options.length) {
      me.dispositions.forEach(function (name) {
        var option = el("option", null, name);
        option.value = name;
        disposition.appendChild(option);
      });
    }
    var quick = panel.querySelector(".quick-replies");
    if (!quick.childElementCount) {
      me.quickReplies.forEach(function (text) {
        var button = el("button", "quick-reply", text);
        button.type = "button";
        button.addEventListener("click", function () {
          var box = panel.querySelector(".composer textarea");
          box.value = text;
          box.focus();
        });
        quick.appendChild(button);
      });
    }
  }

  function post(id, path, body) {
    return api("POST", "/conversations/" + encodeURIComponent(id) + path, body);
  }

  function wire(id, entry) {
    var panel = entry.panel;
    var composer = panel.querySelector(".composer");
    var box = composer.querySelector("textarea");
    composer.addEventListener("submit", function (event) {
      event.preventDefault();
      var text = box.value.trim();
      if (!text) { return; }
      post(id, "/messages", { text: text }).then(function () { box.value = ""; }).catch(fail);
    });
    box.addEventListener("keydown", function (event) {
      if (event.key === "Enter" && !event.shiftKey) { event.preventDefault(); composer.requestSubmit(); }
    });
    box.addEventListener("input", function () {
      var now = Date.now();
      if (feed && now - entry.lastTyping > 2500) {
        entry.lastTyping = now;
        feed.send({ type: "typing", conversation: id });
      }
    });
    var noteForm = panel.querySelector(".note-form");
    noteForm.addEventListener("submit", function (event) {
      event.preventDefault();
      var input = noteForm.querySelector("input");
      var text = input.value.trim();
      if (!text) { return; }
      post(id, "/notes", { text: text }).then(function () { input.value = ""; }).catch(fail);
    });
    var transfer = panel.querySelector(".transfer");
    transfer.addEventListener("submit", function (event) {
      event.preventDefault();
      var parts = transfer.querySelector("select").value.split(":");
      var body = { note: transfer.querySelector("input").value.trim() || null };
      body[parts[0]] = parts.slice(1).join(":");
      post(id, "/transfer", body).then(function () { gone(entry, "Transferred."); }).catch(fail);
    });
    var consult = panel.querySelector(".consult");
    consult.addEventListener("submit", function (event) {
      event.preventDefault();
      post(id, "/consult", { agent: consult.querySelector("select").value }).then(function () {
        W.status("");
      }).catch(fail);
    });
    var back = panel.querySelector(".return-to-bot");
    back.addEventListener("submit", function (event) {
      event.preventDefault();
      post(id, "/return-to-bot", { notes: back.querySelector("input").value.trim() || null }).then(function () {
        gone(entry, "Returned to the bot.");
      }).catch(fail);
    });
    panel.querySelector(".end").addEventListener("click", function () {
      post(id, "/end").then(function () { return load(id); }).catch(fail);
    });
    var wrap = panel.querySelector(".wrap-up");
    wrap.addEventListener("submit", function (event) {
      event.preventDefault();
      post(id, "/wrap-up", {
        notes: wrap.querySelector("textarea").value.trim(),
        disposition: wrap.querySelector("select").value,
      }).then(function () { return load(id); }).catch(fail);
    });
  }

  // --- live feed ---------------------------------------------------------------------------------

  function onMessage(message) {
    var entry = message.conversation ? tabs[message.conversation] : null;
    if (message.type === "agent") {
      var name = message.event;
      if (name === "offer.created" || name === "offer.closed") { refreshOffers(); }
      else if (name === "conversation.assigned" || name === "conversation.consulted") { refreshMe(); }
      else if (name === "presence.changed" && me) { showPresence(message.data.text || message.data.presence); }
    } else if (message.type === "activities" && entry) {
      W.appendEntries(entry.list, message.entries);
      entry.lastSeq = Math.max(entry.lastSeq, message.lastSeq);
      entry.panel.querySelector(".typing").hidden = true;
    } else if (message.type === "typing" && entry) {
      var typing = entry.panel.querySelector(".typing");
      typing.textContent = (message.from || "The customer") + " is typing…";
      typing.hidden = false;
      clearTimeout(entry.typingTimer);
      entry.typingTimer = setTimeout(function () { typing.hidden = true; }, 4000);
    } else if (message.type === "conversation" && entry) {
      load(message.conversation);
    }
  }

  var opened = 0;
  function onOpen() {
    Object.keys(tabs).forEach(function (id) {
      feed.send({ type: "watch", conversation: id, after: tabs[id].lastSeq });
    });
    opened += 1;
    if (opened > 1) { refreshMe(); }  // after a reconnect: catch up on what was missed meanwhile
  }

  function refreshMe() {
    var version = presenceVersion;
    return api("GET", "/me").then(function (data) {
      var current = me ? me.presence : data.presence;
      me = data;
      if (version !== presenceVersion) { me.presence = current; }
      renderPresence();
      renderOffers(data.offers);
      syncTabs(data.conversations);
      document.body.setAttribute("data-ready", "yes");
    }).catch(fail);
  }

  refreshMe().then(function () { feed = W.connect(onMessage, onOpen); });
  // A safety net for events missed while reconnecting.
  setInterval(function () { if (me) { refreshOffers(); } }, 15000);
})();
