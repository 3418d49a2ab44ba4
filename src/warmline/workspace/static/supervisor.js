// The supervisor view: queues, agents and live conversations (refreshed every two seconds),
// read-only monitoring over the live feed, and force-assign for waiting conversations.
(function () {
  "use strict";

  var W = window.WarmlineWorkspace;
  var api = W.api, el = W.el;
  var agents = [];
  var monitored = null;
  var feed = null;
  var monitor = document.getElementById("monitor");
  var monitorList = monitor.querySelector(".transcript");

  function fail(error) { W.status(error.message || String(error)); }

  function duration(seconds) {
    if (seconds === null || seconds === undefined) { return "—"; }
    if (seconds < 60) { return seconds + " s"; }
    return Math.floor(seconds / 60) + " min " + (seconds % 60) + " s";
  }

  function cells(tr, values) { values.forEach(function (value) { tr.appendChild(el("td", null, String(value))); }); }

  function render(floor) {
    agents = floor.agents;
    var queues = document.querySelector("#queues tbody");
    queues.textContent = "";
    floor.queues.forEach(function (queue) {
      var tr = el("tr");
      tr.setAttribute("data-queue", queue.id);
      cells(tr, [queue.name, queue.type, queue.waiting, duration(queue.longestWaitSeconds), queue.agents]);
      queues.appendChild(tr);
    });
    var people = document.querySelector("#agents tbody");
    people.textContent = "";
    floor.agents.forEach(function (agent) {
      var tr = el("tr");
      tr.setAttribute("data-agent", agent.id);
      cells(tr, [agent.name, agent.presence, agent.load + " / " + agent.capacity, agent.active, agent.queues.join(", ")]);
      people.appendChild(tr);
    });
    var live = document.querySelector("#live tbody");
    // Keep a half-made choice across refreshes.
    var chosen = {};
    live.querySelectorAll("tr[data-conversation] select").forEach(function (pick) {
      chosen[pick.closest("tr").getAttribute("data-conversation")] = pick.value;
    });
    live.textContent = "";
    floor.conversations.forEach(function (c) {
      var tr = el("tr");
      tr.setAttribute("data-conversation", c.id);
      var handler = agents.filter(function (agent) { return agent.id === c.agent; })[0];
      cells(tr, [c.customer, c.state, c.queueName || "—", handler ? handler.name : (c.agent || "—"), duration(c.waitingSeconds)]);
      var actions = el("td", "actions");
      var watch = el("button", "monitor", "Monitor");
      watch.type = "button";
      watch.addEventListener("click", function () { startMonitor(c); });
      actions.appendChild(watch);
      if (c.state === "waiting") {
        var pick = el("select", "assign-agent");
        pick.setAttribute("aria-label", "Assign to");
        agents.forEach(function (agent) {
          var option = el("option", null, agent.name);
          option.value = agent.id;
          pick.appendChild(option);
        });
        if (chosen[c.id]) { pick.value = chosen[c.id]; }
        var assign = el("button", "assign", "Assign");
        assign.type = "button";
        assign.addEventListener("click", function () {
          api("POST", "/supervisor/conversations/" + encodeURIComponent(c.id) + "/assign", { agent: pick.value })
            .then(refresh).catch(fail);
        });
        actions.appendChild(pick);
        actions.appendChild(assign);
      }
      tr.appendChild(actions);
      live.appendChild(tr);
    });
    document.body.setAttribute("data-ready", "yes");
  }

  function refresh() { return api("GET", "/supervisor/overview").then(render).catch(fail); }

  function startMonitor(c) {
    stopMonitor();
    monitored = c.id;
    monitor.hidden = false;
    monitor.setAttribute("data-conversation", c.id);
    monitor.querySelector(".monitor-customer").textContent = c.customer;
    monitorList.textContent = "";
    monitorList.setAttribute("data-last-seq", "0");
    api("GET", "/conversations/" + encodeURIComponent(c.id)).then(function (view) {
      monitor.querySelector(".monitor-state").textContent = view.conversation.state;
      W.appendEntries(monitorList, view.transcript);
      feed.send({ type: "watch", conversation: c.id, after: view.conversation.lastSeq });
    }).catch(fail);
  }

  function stopMonitor() {
    if (monitored && feed) { feed.send({ type: "unwatch", conversation: monitored }); }
    monitored = null;
    monitor.hidden = true;
  }
  monitor.querySelector(".stop-monitor").addEventListener("click", stopMonitor);

  feed = W.connect(function (message) {
    if (message.type === "activities" && message.conversation === monitored) {
      W.appendEntries(monitorList, message.entries);
    } else if (message.type === "conversation" && message.conversation === monitored) {
      refresh();
      api("GET", "/conversations/" + encodeURIComponent(monitored)).then(function (view) {
        monitor.querySelector(".monitor-state").textContent = view.conversation.state;
      }).catch(fail);
    }
  }, function () {
    if (monitored) {
      feed.send({ type: "watch", conversation: monitored, after: Number(monitorList.getAttribute("data-last-seq") || "0") });
    }
  });
  refresh();
  setInterval(refresh, 2000);
})();
