// sitsense phone page: log in, follow the service over Server-Sent Events, send the buttons' commands.
"use strict";

const $ = (id) => document.getElementById(id);
const POSTURES = ["sitting", "standing", "walking", "lying", "not_worn", "unknown"];
const NAMES = { sitting: "sitting", standing: "standing", walking: "walking", lying: "lying",
  not_worn: "sensor off", unknown: "unknown" };
const SEDENTARY = new Set(["sitting", "lying"]);
const DONE_TEXT = {
  snooze: "Snoozed", pause: "Alerts paused for 60 min", resume: "Alerts on again",
  ack: "Done: no more reminders for this sitting bout",
  calibrate: "Calibrating: stand upright and still for 5 seconds",
};

let csrf = null;
let page = {};
let receivedAt = 0;
let events = null;
let audio = null;
let toastTimer = null;
let lastNotice = { kind: "", at: 0 };
let lastTimelineDraw = 0;
const EVENT_OF = { snooze: "snooze", pause: "pause", resume: "resume", ack: "acknowledged" };
const charts = {};

// ---------------------------------------------------------------- helpers

function show(el, on) { el.hidden = !on; }

function pad(n) { return String(n).padStart(2, "0"); }

function duration(seconds) {
  const m = Math.floor(seconds / 60);
  return m < 60 ? `${m} min` : `${Math.floor(m / 60)} h ${pad(m % 60)} min`;
}

function hoursMinutes(seconds) {
  const m = Math.floor(seconds / 60);
  return m < 60 ? `${m}m` : `${Math.floor(m / 60)}h${pad(m % 60)}`;
}

function clockOf(iso) { return iso ? iso.slice(11, 16) : ""; }

function elapsedSensorS() {
  return ((performance.now() - receivedAt) / 1000) * (page.speed || 1);
}

function css(name) { return getComputedStyle(document.documentElement).getPropertyValue(name).trim(); }

async function api(path, body) {
  const opts = { method: body === undefined ? "GET" : "POST", cache: "no-store", credentials: "same-origin",
    headers: {} };
  if (body !== undefined) {
    opts.headers["Content-Type"] = "application/json";
    if (csrf) opts.headers["X-CSRF-Token"] = csrf;
    opts.body = JSON.stringify(body);
  }
  const resp = await fetch(path, opts);
  let data = {};
  try { data = await resp.json(); } catch (e) { data = { error: `HTTP ${resp.status}` }; }
  return { status: resp.status, data };
}

function toast(text, bad) {
  const el = $("toast");
  el.textContent = text;
  el.classList.toggle("bad", !!bad);
  show(el, true);
  clearTimeout(toastTimer);
  toastTimer = setTimeout(() => show(el, false), 6000);
}

// sound needs a tap first (browsers allow audio only after one); vibration likewise
function unlockAudio() {
  const Ctx = window.AudioContext || window.webkitAudioContext;
  if (!audio && Ctx) { try { audio = new Ctx(); } catch (e) { audio = null; } }
  if (audio && audio.state === "suspended") audio.resume();
}

function chime() {
  if (!audio) return;
  const t0 = audio.currentTime;
  [0, 0.25].forEach((dt, i) => {
    const osc = audio.createOscillator();
    const gain = audio.createGain();
    osc.frequency.value = i ? 1320 : 880;
    gain.gain.setValueAtTime(0.0001, t0 + dt);
    gain.gain.exponentialRampToValueAtTime(0.3, t0 + dt + 0.02);
    gain.gain.exponentialRampToValueAtTime(0.0001, t0 + dt + 0.2);
    osc.connect(gain).connect(audio.destination);
    osc.start(t0 + dt);
    osc.stop(t0 + dt + 0.22);
  });
}

// ---------------------------------------------------------------- log in and out

function showLogin(message) {
  if (events) { events.close(); events = null; }
  csrf = null;
  show($("login"), true);
  show($("app"), false);
  show($("controls"), false);
  show($("logout"), false);
  $("link").textContent = "";
  $("login-error").textContent = message || "";
  $("password").focus();
}

async function start() {
  const { status, data } = await api("/api/state");
  if (status === 401) { showLogin(); return; }
  if (status !== 200) { $("link").textContent = data.error || `error ${status}`; return; }
  csrf = data.csrf;
  show($("login"), false);
  show($("app"), true);
  show($("controls"), true);
  show($("logout"), true);
  render(data, true);
  connect();
}

$("login-form").addEventListener("submit", async (ev) => {
  ev.preventDefault();
  unlockAudio();
  const button = $("login-button");
  button.disabled = true;
  try {
    const { status, data } = await api("/api/login", { password: $("password").value });
    $("password").value = "";
    if (status === 200) { csrf = data.csrf; $("login-error").textContent = ""; await start(); }
    else { $("login-error").textContent = data.error || `error ${status}`; }
  } catch (e) {
    $("login-error").textContent = "cannot reach the Pi";
  } finally {
    button.disabled = false;
  }
});

$("logout").addEventListener("click", async () => {
  await api("/api/logout", {});
  showLogin("Logged out");
});

// ---------------------------------------------------------------- live updates

function connect() {
  if (events) events.close();
  events = new EventSource("/api/events");
  events.addEventListener("open", () => { $("link").textContent = "live"; $("link").className = "link live"; });
  events.addEventListener("page", (e) => render(JSON.parse(e.data), false));
  events.addEventListener("notice", (e) => notice(JSON.parse(e.data)));
  events.addEventListener("error", async () => {
    $("link").textContent = "reconnecting"; $("link").className = "link down";
    if (events && events.readyState === EventSource.CLOSED) {
      const { status } = await api("/api/state").catch(() => ({ status: 0 }));
      if (status === 401) showLogin("Please log in again");
      else setTimeout(connect, 3000);
    }
  });
}

function render(update, full) {
  const before = page.alert ? page.alert.id : null;
  page = full ? update : Object.assign({}, page, update);
  receivedAt = performance.now();
  renderState();
  renderAlert(before);
  renderRelease();
  if (full || update.timeline || performance.now() - lastTimelineDraw > 5000) drawTimeline();
  drawWeek();
}

function renderState() {
  const s = page.state;
  if (!s) return;
  $("posture").textContent = s.posture_text;
  $("posture-dot").style.background = css(`--${s.posture}`) || css("--unknown");
  const t = s.today;
  $("f-sitting").textContent = hoursMinutes(t.sitting_s);
  $("f-breaks").textContent = t.breaks;
  $("f-heeded").textContent = `${t.heeded}/${t.alerts}`;
  $("f-release").textContent = `${(t.release_s / 60).toFixed(1)}/${Math.round(t.goal_s / 60)}`;
  $("goal-bar").style.width = `${Math.min(100, (100 * t.release_s) / t.goal_s)}%`;
  const modes = [];
  if (s.paused_until) modes.push(`Alerts paused until ${clockOf(s.paused_until)}`);
  if (s.snoozed_until) modes.push(`Next reminder not before ${clockOf(s.snoozed_until)}`);
  $("modes").textContent = modes.join(" · ");
  show($("sensor"), s.sensor !== "ok");
  $("sensor").textContent = `Sensor: ${s.sensor}`;
  tickBout();
}

function tickBout() {
  const s = page.state;
  if (!s) return;
  if (SEDENTARY.has(s.posture) && s.bout_s > 0) {
    $("bout").textContent = `for ${duration(s.bout_s + elapsedSensorS())}`;
  } else {
    $("bout").textContent = s.bout_s > 0 ? `(bout ${duration(s.bout_s)})` : "";
  }
}

function renderAlert(beforeId) {
  const a = page.alert;
  show($("alert"), !!a);
  $("done-button").disabled = !a || a.acknowledged;
  if (!a) return;
  $("alert-kicker").textContent = a.acknowledged ? "On it: no more reminders this bout"
    : a.reminder > 1 ? `Reminder ${a.reminder}` : "Time to stand up";
  $("alert-message").textContent = a.message;
  const ex = a.exercise;
  show($("alert-exercise"), !!ex);
  if (ex) {
    $("ex-name").textContent = ex.name;
    $("ex-dose").textContent = ex.dose;
    $("ex-cue").textContent = ex.cue;
    $("ex-caution").textContent = ex.caution || "";
    const ol = $("ex-steps");
    ol.replaceChildren(...(ex.steps || []).map((text) => {
      const li = document.createElement("li"); li.textContent = text; return li;
    }));
  }
  $("alert-safety").textContent = a.safety || "";
  if (a.id !== beforeId) $("ex-how").open = false;
}

function arrived() {
  const card = $("alert");
  card.classList.remove("arrived");
  void card.offsetWidth; // restart the animation
  card.classList.add("arrived");
  if (navigator.vibrate) { try { navigator.vibrate([300, 150, 300]); } catch (e) { /* not allowed */ } }
  chime();
  document.title = "Stand up · sitsense";
  setTimeout(() => { document.title = "sitsense"; }, 30000);
}

function renderRelease() {
  const r = page.release;
  show($("release"), !!r);
  if (!r) return;
  $("rel-name").textContent = r.exercise.name;
  $("rel-label").textContent = r.label;
  tickRelease();
}

function tickRelease() {
  const r = page.release;
  if (!r) return;
  const left = Math.max(0, (r.ends_in_s || 0) - elapsedSensorS());
  const secs = Math.ceil(left);
  $("rel-timer").textContent = r.phase_s ? `${Math.floor(secs / 60)}:${pad(secs % 60)}` : "✓";
  $("rel-bar").style.width = r.phase_s ? `${100 * (1 - left / r.phase_s)}%` : "100%";
}

function notice(n) {
  lastNotice = { kind: n.kind, at: performance.now() };
  const li = document.createElement("li");
  const time = document.createElement("time");
  time.textContent = clockOf(n.time);
  li.append(time, document.createTextNode(n.text));
  const ul = $("notices");
  ul.prepend(li);
  while (ul.children.length > 8) ul.lastChild.remove();
  if (n.kind === "alert") arrived(); // the alert card shows it
  else if (n.kind !== "break") toast(n.text);
}

// ---------------------------------------------------------------- buttons

document.querySelectorAll("#controls button").forEach((button) => {
  button.addEventListener("click", async () => {
    unlockAudio();
    const name = button.dataset.cmd;
    let body = {};
    if (name === "pause") body = { minutes: 60 };
    if (name === "ack") {
      if (!page.alert) { toast("No alert to mark done"); return; }
      body = { id: page.alert.id };
    }
    button.classList.add("busy");
    try {
      const { status, data } = await api(`/api/cmd/${name}`, body);
      if (status === 401) { showLogin("Please log in again"); return; }
      const told = lastNotice.kind === EVENT_OF[name] && performance.now() - lastNotice.at < 3000;
      if (status === 200 && !told) toast(DONE_TEXT[name] || `${name}: done`);
      else if (status === 202) toast(`${name}: sent, waiting for the sensor loop`);
      else toast(data.error || `${name} failed (${status})`, true);
    } catch (e) {
      toast("cannot reach the Pi", true);
    } finally {
      button.classList.remove("busy");
    }
  });
});
document.addEventListener("pointerdown", unlockAudio, { once: true });

// ---------------------------------------------------------------- charts

function dayHours() {
  const tl = page.timeline;
  if (!tl || !tl.day_start || !page.state) return 0;
  return (Date.parse(page.state.time) - Date.parse(tl.day_start)) / 3.6e6 + elapsedSensorS() / 3600;
}

function chartColours() {
  return { text: css("--muted"), grid: css("--line") };
}

function drawTimeline() {
  if (!window.Chart || !page.timeline) return;
  lastTimelineDraw = performance.now();
  const tl = page.timeline;
  const now = Math.min(24, dayHours());
  const segs = tl.segments.slice();
  if (tl.open) segs.push([tl.open[0], Math.max(tl.open[0], now), tl.open[1]]);
  const first = segs.length ? segs[0][0] : now;
  const lo = Math.max(0, Math.floor(first));
  const hi = Math.min(24, Math.max(lo + 1, Math.ceil(now)));
  const datasets = POSTURES.filter((p) => segs.some((s) => s[2] === p)).map((p) => ({
    label: NAMES[p], backgroundColor: css(`--${p}`), borderWidth: 0, grouped: false,
    barPercentage: 1, categoryPercentage: 1,
    data: segs.filter((s) => s[2] === p).map((s) => ({ x: [s[0], s[1]], y: "today" })),
  }));
  const c = chartColours();
  const hour = (h) => `${pad(Math.floor(h))}:${pad(Math.round((h % 1) * 60))}`;
  if (!charts.timeline) {
    charts.timeline = new Chart($("timeline-chart"), {
      type: "bar",
      data: { labels: ["today"], datasets },
      options: {
        indexAxis: "y", animation: false, maintainAspectRatio: false, responsive: true,
        scales: {
          x: { type: "linear", min: lo, max: hi, ticks: { color: c.text, stepSize: hi - lo > 8 ? 3 : 1,
            callback: (v) => `${pad(v)}h` }, grid: { color: c.grid } },
          y: { display: false, stacked: true },
        },
        plugins: {
          legend: { position: "bottom", labels: { color: c.text, boxWidth: 10, boxHeight: 10, font: { size: 11 } } },
          tooltip: { callbacks: { label: (ctx) => `${ctx.dataset.label} ${hour(ctx.raw.x[0])}–${hour(ctx.raw.x[1])}` } },
        },
      },
    });
  } else {
    charts.timeline.data.datasets = datasets;
    charts.timeline.options.scales.x.min = lo;
    charts.timeline.options.scales.x.max = hi;
    charts.timeline.update("none");
  }
}

let lastWeek = "";
function drawWeek() {
  if (!window.Chart || !page.week) return;
  const key = JSON.stringify(page.week.map((d) => [d.date, d.hours]).map(([d, h]) =>
    [d, Object.values(h).map((x) => x.toFixed(1))]));
  if (key === lastWeek && charts.week) return; // nothing visible changed
  lastWeek = key;
  const labels = page.week.map((d) => new Date(`${d.date}T12:00:00`).toLocaleDateString(undefined, { weekday: "short" }));
  const datasets = ["sitting", "standing", "walking", "lying"].map((p) => ({
    label: NAMES[p], backgroundColor: css(`--${p}`), data: page.week.map((d) => d.hours[p]), borderWidth: 0,
  }));
  const c = chartColours();
  if (!charts.week) {
    charts.week = new Chart($("week-chart"), {
      type: "bar",
      data: { labels, datasets },
      options: {
        animation: false, maintainAspectRatio: false, responsive: true,
        scales: {
          x: { stacked: true, ticks: { color: c.text }, grid: { display: false } },
          y: { stacked: true, ticks: { color: c.text }, grid: { color: c.grid },
            title: { display: true, text: "hours", color: c.text } },
        },
        plugins: {
          legend: { position: "bottom", labels: { color: c.text, boxWidth: 10, boxHeight: 10, font: { size: 11 } } },
          tooltip: { callbacks: { afterBody: (items) => {
            const d = page.week[items[0].dataIndex];
            return `alerts ${d.alerts}, heeded ${d.heeded}, release ${d.release_min} min`;
          } } },
        },
      },
    });
  } else {
    charts.week.data.labels = labels;
    charts.week.data.datasets = datasets;
    charts.week.update("none");
  }
}

function redrawCharts() {
  Object.values(charts).forEach((ch) => ch.destroy());
  delete charts.timeline; delete charts.week; lastWeek = "";
  drawTimeline(); drawWeek();
}
window.matchMedia("(prefers-color-scheme: dark)").addEventListener("change", redrawCharts);

// ---------------------------------------------------------------- clock

let ticks = 0;
setInterval(() => {
  if (!page.state) return;
  tickBout();
  tickRelease();
  if (++ticks % 60 === 0) drawTimeline(); // the open segment grows
}, 1000);

start().catch(() => { $("link").textContent = "cannot reach the Pi"; });
