// The Agent transfers page: drives the bot's omnichannel connection through /api/admin.
// Every answer re-renders from the server's view, so the page never guesses the stored state.
"use strict";

(function () {
  const root = document.getElementById("transfers");
  if (!root) return;
  const bot = root.dataset.bot;
  const csrfMeta = document.querySelector('meta[name="csrf-token"]');
  const csrf = csrfMeta ? csrfMeta.content : "";
  const $ = (id) => document.getElementById(id);
  const base = "/api/admin/bots/" + encodeURIComponent(bot);
  let view = null;

  async function api(method, path, body) {
    const headers = { "Accept": "application/json" };
    if (csrf) headers["X-CSRF-Token"] = csrf;
    if (body !== undefined) headers["Content-Type"] = "application/json";
    const response = await fetch(path, {
      method,
      headers,
      credentials: "same-origin",
      body: body === undefined ? undefined : JSON.stringify(body),
    });
    let data = null;
    try {
      data = await response.json();
    } catch (_) {
      data = null;
    }
    if (!response.ok) {
      const message = data && data.error ? data.error.message : "request failed (" + response.status + ")";
      throw new Error(message);
    }
    return data;
  }

  function show(id, visible) {
    $(id).hidden = !visible;
  }

  function showError(message) {
    $("error").textContent = message || "";
    show("error", Boolean(message));
  }

  function setWarnings(items) {
    const list = $("warnings");
    list.replaceChildren();
    for (const text of items || []) {
      const li = document.createElement("li");
      li.textContent = text;
      list.appendChild(li);
    }
  }

  function setMessage(text) {
    $("tile-state").textContent = text;
  }

  function stateText(connection) {
    if (!connection) return "Not connected to an omnichannel.";
    const where = "'" + connection.environment + "'";
    if (connection.state === "enabled") return "Connected to the omnichannel of " + where + ".";
    if (connection.state === "disabled") {
      return "Connected to " + where + " but disabled: the bot receives no traffic from the omnichannel.";
    }
    return "Disconnected: the application user is disabled and the bot gets no traffic. "
      + "Select Enable to connect again from the start.";
  }

  function render(next) {
    view = next;
    const connection = view.connection;
    const live = connection && connection.state !== "disconnected";
    setMessage(stateText(connection));
    show("enable", !live && $("setup").hidden);
    show("connected", Boolean(live));
    if (live) show("setup", false);
    if (live) {
      $("connected-environment").textContent = connection.environment;
      $("connected-app-id").textContent = connection.appId;
      $("connected-user").textContent = connection.applicationUser || "missing";
      $("connected-state").textContent = connection.state
        + (connection.channelEnabled ? " · channel enabled" : " · channel off")
        + (connection.voiceEnabled ? " · voice on" : "");
      $("connected-workstreams").textContent = connection.workstreams.length
        ? connection.workstreams.join(", ")
        : "none yet: make the bot the first agent of a workstream, then Refresh";
      $("details-link").href = "/admin/environments/" + encodeURIComponent(connection.environment)
        + "#bot-" + encodeURIComponent(bot);
      show("disable", connection.state === "enabled");
      show("enable-connection", connection.state === "disabled");
    }
    const select = $("environment");
    const chosen = select.value || view.selectedEnvironment;
    select.replaceChildren();
    for (const env of view.environments) {
      const option = document.createElement("option");
      option.value = env.id;
      option.textContent = env.name + " (" + env.id + ") · " + (env.geography || "no geography")
        + (env.omnichannel ? "" : " · omnichannel off");
      select.appendChild(option);
    }
    if (chosen) select.value = chosen;
    $("voice").checked = Boolean(view.voiceEnabled);
  }

  async function load() {
    render(await api("GET", base + "/agent-transfers"));
  }

  async function checkEnvironment() {
    const env = $("environment").value;
    if (!env) return;
    const check = await api("GET", base + "/connection/check?environment=" + encodeURIComponent(env));
    $("environment-problem").textContent = check.problem || "";
    show("environment-problem", Boolean(check.problem));
    $("environment-warning").textContent = (check.warnings || []).join(" ");
    show("environment-warning", (check.warnings || []).length > 0);
    $("add-bot").disabled = !check.ok;
    const list = $("extension-list");
    list.replaceChildren();
    const missing = check.missingExtensions || [];
    $("extensions-environment").textContent = "'" + env + "'";
    for (const name of missing) {
      const li = document.createElement("li");
      li.dataset.extension = name;
      li.append(name + " ");
      const button = document.createElement("button");
      button.type = "button";
      button.textContent = "Install";
      button.dataset.install = name;
      button.addEventListener("click", () => install(env, name, button));
      li.appendChild(button);
      list.appendChild(li);
    }
    show("missing-extensions", missing.length > 0);
    show("extensions-ok", missing.length === 0 && check.ok);
  }

  async function install(env, name, button) {
    button.disabled = true;
    try {
      await api("POST", "/api/admin/environments/" + encodeURIComponent(env) + "/extensions/"
        + encodeURIComponent(name));
      showError("");
    } catch (error) {
      showError(error.message);
    }
    await checkEnvironment();
  }

  async function act(work) {
    showError("");
    try {
      await work();
    } catch (error) {
      showError(error.message);
    }
  }

  $("enable").addEventListener("click", () => act(async () => {
    show("setup", true);
    show("enable", false);
    setWarnings([]);
    await checkEnvironment();
  }));

  $("environment").addEventListener("change", () => act(checkEnvironment));

  $("register-app").addEventListener("click", () => act(async () => {
    const app = await api("POST", "/api/admin/apps", { name: bot + " (Warmline bot)" });
    $("new-app-id").textContent = app.appId;
    $("new-app-secret").textContent = app.secret;
    show("new-app", true);
    $("app-id").value = app.appId;
  }));

  $("add-bot").addEventListener("click", () => act(async () => {
    const appId = $("app-id").value.trim();
    if (!appId) throw new Error("Paste the application (client) id of the bot's app registration first.");
    const result = await api("PUT", base + "/connection", {
      environment: $("environment").value,
      appId,
    });
    show("setup", false);
    render(result);
    setWarnings(result.warnings);
    $("checks").replaceChildren();
  }));

  $("refresh").addEventListener("click", () => act(async () => {
    const result = await api("POST", base + "/connection/refresh");
    const list = $("checks");
    list.replaceChildren();
    for (const check of result.checks) {
      const li = document.createElement("li");
      li.className = check.ok ? "pass" : "fail";
      li.dataset.check = check.name;
      const mark = document.createElement("span");
      mark.className = "mark";
      mark.textContent = check.ok ? "✓" : "✗";
      const detail = document.createElement("span");
      detail.className = "detail";
      detail.textContent = check.detail;
      li.append(mark, check.name, detail);
      list.appendChild(li);
    }
    list.dataset.ok = String(result.ok);
    await load();
  }));

  $("disable").addEventListener("click", () => act(async () => {
    render(await api("POST", base + "/connection/disable"));
    $("checks").replaceChildren();
  }));

  $("enable-connection").addEventListener("click", () => act(async () => {
    render(await api("POST", base + "/connection/enable"));
    $("checks").replaceChildren();
  }));

  $("disconnect").addEventListener("click", () => act(async () => {
    render(await api("DELETE", base + "/connection"));
    $("checks").replaceChildren();
    setWarnings([]);
  }));

  $("voice").addEventListener("change", async () => {
    const wanted = $("voice").checked;
    $("voice-error").hidden = true;
    $("voice-message").textContent = "";
    try {
      const result = await api("PUT", base + "/voice", { enabled: wanted });
      render(result);
      $("voice-message").textContent = (wanted ? "Voice is on." : "Voice is off.")
        + (result.notes.length ? " " + result.notes.join("; ") + "." : "");
    } catch (error) {
      $("voice").checked = !wanted;
      $("voice-error").textContent = error.message;
      $("voice-error").hidden = false;
    }
  });

  act(load);
})();
