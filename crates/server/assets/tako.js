// Tako's web UI script: live updates and small enhancements. Every page
// works without it; nothing here is needed to read or change anything.
"use strict";

// Ages ("3 min ago") stay current.
function ago(seconds) {
  if (seconds < 45) return "just now";
  if (seconds < 5400) return Math.round(seconds / 60) + " min ago";
  if (seconds < 129600) return Math.round(seconds / 3600) + " h ago";
  return Math.round(seconds / 86400) + " days ago";
}
function refreshAges(root) {
  const now = Date.now();
  for (const el of (root || document).querySelectorAll("time[datetime]")) {
    const at = Date.parse(el.getAttribute("datetime"));
    if (!isNaN(at)) el.textContent = ago(Math.max(0, (now - at) / 1000));
  }
}
setInterval(refreshAges, 30000);

// The dashboard: changed cells arrive as server-sent events.
function liveDashboard() {
  const grid = document.getElementById("dashboard");
  if (!grid || !window.EventSource) return;
  const source = new EventSource(grid.dataset.live);
  source.addEventListener("cells", (event) => {
    for (const update of JSON.parse(event.data)) {
      for (const cell of grid.querySelectorAll("td[data-cell]")) {
        if (cell.dataset.cell === update.key) cell.innerHTML = update.html;
      }
    }
  });
  source.addEventListener("reload", () => { source.close(); location.reload(); });
}

// The deployment page: the log follows live, the steps and the agents'
// jobs refresh.
function liveDeployment() {
  const log = document.getElementById("log");
  if (!log) return;
  const search = document.getElementById("log-search");
  const followButton = document.getElementById("log-follow");
  let following = true;
  const atBottom = () => log.scrollHeight - log.scrollTop - log.clientHeight < 24;
  const setFollowing = (on) => {
    following = on;
    followButton.setAttribute("aria-pressed", String(on));
    followButton.textContent = on ? "Following" : "Paused: follow";
    if (on) log.scrollTop = log.scrollHeight;
  };
  followButton.addEventListener("click", () => setFollowing(!following));
  log.addEventListener("scroll", () => {
    if (following && !atBottom()) setFollowing(false);
    else if (!following && atBottom()) setFollowing(true);
  });
  log.addEventListener("wheel", (e) => { if (e.deltaY < 0 && following) setFollowing(false); });

  const matches = (line) => {
    const term = search.value.trim().toLowerCase();
    return !term || line.textContent.toLowerCase().includes(term);
  };
  const filter = () => {
    for (const line of log.children) line.classList.toggle("hidden", !matches(line));
  };
  search.addEventListener("input", filter);

  const add = (data) => {
    const line = document.createElement("div");
    line.className = "line " + data.stream + " level-" + data.level;
    const ts = document.createElement("span");
    ts.className = "ts";
    ts.textContent = data.timestamp.slice(11, 23);
    const step = document.createElement("span");
    step.className = "step";
    const label = data.step || "-";
    const suffix = data.agent ? "@" + data.agent : "";
    if (suffix && label.endsWith(suffix)) {
      // An agent's line (`Test@win-01`): its step, and its agent apart.
      const name = label.slice(0, label.length - suffix.length);
      step.dataset.step = name;
      step.dataset.agent = data.agent;
      const agent = document.createElement("span");
      agent.className = "agent";
      agent.textContent = suffix;
      step.append(name, agent);
    } else {
      if (data.step) step.dataset.step = data.step;
      step.textContent = label;
    }
    const text = document.createElement("span");
    text.className = "text";
    text.textContent = data.text;
    line.append(ts, step, text);
    if (!matches(line)) line.classList.add("hidden");
    log.appendChild(line);
  };
  log.scrollTop = log.scrollHeight;

  const stepsBox = document.querySelector("[data-steps]");
  const refreshSteps = async () => {
    try {
      const answer = await fetch(stepsBox.dataset.steps, { credentials: "same-origin" });
      if (answer.ok) stepsBox.innerHTML = await answer.text();
    } catch (_) { /* the next tick tries again */ }
  };
  let stepsTimer = null;

  if (log.dataset.final === "true" || !window.EventSource) {
    if (!window.EventSource) return;
  } else {
    stepsTimer = setInterval(refreshSteps, 1000);
  }
  const source = new EventSource(log.dataset.events + "?after=" + log.dataset.cursor);
  let pending = [];
  let scheduled = false;
  const flush = () => {
    scheduled = false;
    for (const data of pending) add(data);
    pending = [];
    if (following) log.scrollTop = log.scrollHeight;
  };
  source.addEventListener("line", (event) => {
    pending.push(JSON.parse(event.data));
    if (!scheduled) { scheduled = true; requestAnimationFrame(flush); }
  });
  source.addEventListener("end", () => {
    source.close();
    flush();
    if (stepsTimer) clearInterval(stepsTimer);
    refreshSteps();
    const cancel = document.querySelector("form.cancel");
    if (cancel) cancel.remove();
  });
}

document.addEventListener("DOMContentLoaded", () => {
  refreshAges();
  liveDashboard();
  liveDeployment();
});
