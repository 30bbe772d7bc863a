// The smsgate admin page: reads GET /v1/dashboard every few seconds, renders it with DOM
// calls only (never innerHTML: every text shown comes from outside), and sends requeue and
// cancel with the session's CSRF token.
"use strict";

const REFRESH_MS = 10000;
const csrf = document.querySelector('meta[name="csrf-token"]').content;
const STATUSES = ["queued", "scheduled", "sending", "sent", "delivered", "failed", "unknown",
  "expired", "cancelled"];
let refreshes = 0;
let busy = false;

function el(tag, attrs, ...children) {
  const e = document.createElement(tag);
  for (const [k, v] of Object.entries(attrs || {})) {
    if (v === null || v === undefined || v === false) continue;
    if (k === "class") e.className = v;
    else if (k === "text") e.textContent = v;
    else if (k.startsWith("on")) e.addEventListener(k.slice(2), v);
    else e.setAttribute(k, v === true ? "" : String(v));
  }
  for (const c of children.flat(Infinity)) {
    if (c === null || c === undefined || c === false) continue;
    e.append(c instanceof Node ? c : document.createTextNode(String(c)));
  }
  return e;
}

function svg(tag, attrs, ...children) {
  const e = document.createElementNS("http://www.w3.org/2000/svg", tag);
  for (const [k, v] of Object.entries(attrs || {})) e.setAttribute(k, String(v));
  for (const c of children) e.append(c instanceof Node ? c : document.createTextNode(String(c)));
  return e;
}

async function api(path, options) {
  const opts = Object.assign({ credentials: "same-origin", headers: {} }, options || {});
  if (opts.method && opts.method !== "GET") opts.headers["X-CSRF-Token"] = csrf;
  const r = await fetch(path, opts);
  if (r.status === 401) {
    window.location.assign("/login");
    throw new Error("logged out");
  }
  const body = r.headers.get("content-type")?.includes("json") ? await r.json() : null;
  if (!r.ok) throw new Error((body && (body.detail || body.title)) || `HTTP ${r.status}`);
  return body;
}

function showError(msg) {
  const e = document.getElementById("error");
  e.textContent = msg || "";
  e.hidden = !msg;
}

// A time with its zone (the browser's), e.g. "14:05 GMT+1" or "Dec 7, 09:00 EST".
function when(t) {
  if (!t) return "";
  const d = new Date(t);
  const today = new Date().toDateString() === d.toDateString();
  return today ? d.toLocaleTimeString([], { hour: "2-digit", minute: "2-digit", timeZoneName: "short" })
    : d.toLocaleString([], { month: "short", day: "numeric", hour: "2-digit", minute: "2-digit",
      timeZoneName: "short" });
}

function ago(seconds) {
  if (seconds === null || seconds === undefined) return "";
  if (seconds < 90) return `${seconds} s`;
  if (seconds < 5400) return `${Math.round(seconds / 60)} min`;
  if (seconds < 172800) return `${Math.round(seconds / 3600)} h`;
  return `${Math.round(seconds / 86400)} days`;
}

function bars(signal) {
  const n = signal ? signal.bars : 0;
  const label = signal && signal.dbm !== null && signal.dbm !== undefined
    ? `${n} of 5 bars (${signal.dbm} dBm)` : "no signal reading";
  return el("span", { class: "bars", title: label, "aria-label": label, role: "img" },
    [1, 2, 3, 4, 5].map((i) => el("i", { class: i <= n ? "on" : "" })));
}

function stateClass(state) {
  return state === "up" ? "ok" : (state === "down" || state === "stopped") ? "bad" : "warn";
}

// Whether a modem sends now, in words: up, resting until T, at its limit until T, or its
// driver state when it is not up.
function sendingWord(m) {
  const until = m.sending_until ? ` until ${when(m.sending_until)}` : "";
  if (m.sending === "resting") return `resting${until}`;
  if (m.sending === "limited") return `at its limit${until}`;
  return m.state;
}

function sendingClass(m) {
  return m.sending === "resting" || m.sending === "limited" ? "warn" : stateClass(m.state);
}

// A modem sends when it is up and neither resting nor at a limit (an older daemon: up).
function sends(m) {
  return m.sending ? m.sending === "up" : m.state === "up";
}

function renderModems(modems) {
  const box = document.getElementById("modems");
  box.replaceChildren();
  if (!modems.length) box.append(el("p", { class: "empty", text: "No modem configured." }));
  for (const m of modems) {
    const rows = [
      ["Operator", m.operator || "—"],
      ["Network", m.registration || "—"],
      ["Signal", bars(m.signal)],
      ["Sent today", m.max_per_day ? `${m.sent_today} of ${m.max_per_day}` : String(m.sent_today)],
      ["Failed today", String(m.failed_today || 0)],
      ["Texts received today", String(m.received_today || 0)],
      ["Number", m.own_number || "—"],
      ["Model", m.model || "—"],
      ["Port", m.port],
    ];
    const pauses = { quarantined: "resting: it went down too often", minute_limit: "at its per-minute limit",
      day_limit: "at its daily limit" };
    if (m.balance) {
      const b = m.balance;
      const text = b.amount !== null && b.amount !== undefined ? String(b.amount) : (b.text || "—");
      rows.push(["Balance", el("span", { class: b.low ? "warn" : "", title: b.text || "",
        text: `${text}${b.low ? " (low)" : ""} · ${when(b.checked_at)}` })]);
    }
    if (m.paused) {
      rows.push(["Paused", el("span", { class: "warn", "data-paused": m.paused,
        text: `${pauses[m.paused] || m.paused}${m.sending_until ? `; sends again ${when(m.sending_until)}` : ""}` })]);
    }
    if (m.foreign_messages) {
      rows.push(["SIM", el("span", { class: "warn", "data-foreign": String(m.foreign_messages),
        title: "Sent texts or drafts a phone left in the SIM: they take slots customers' replies need. [inbound] purge_foreign = true deletes them.",
        text: `${m.foreign_messages} phone ${m.foreign_messages === 1 ? "text" : "texts"} left in the SIM` })]);
    }
    if (m.last_error) {
      rows.push(["Last error", el("span", { class: m.state === "up" ? "warn" : "error", "data-last-error": "1",
        text: `${m.last_error}${m.last_error_at ? ` · ${when(m.last_error_at)}` : ""}` })]);
    }
    box.append(el("div", { class: "modem", "data-modem": m.name },
      el("div", { class: "name" }, el("span", { text: m.name }),
        el("span", { class: `pill ${sendingClass(m)}`, "data-state": m.state, "data-sending": m.sending || m.state,
          text: sendingWord(m) })),
      el("dl", {}, rows.map(([k, v]) => [el("dt", { text: k }), el("dd", {}, v)]))));
  }
  const up = modems.filter(sends).length;
  const overall = document.getElementById("overall");
  const resting = modems.filter((m) => m.sending === "resting" || m.sending === "limited");
  overall.textContent = modems.length === 0 ? "no modem"
    : up === modems.length ? (up === 1 ? "modem up" : `all ${up} modems up`)
    : modems.length === 1 ? `modem ${sendingWord(modems[0])}`
    : `${modems.length - up} of ${modems.length} modems not sending`;
  overall.dataset.sending = String(up);
  overall.className = `pill ${modems.length && up === modems.length ? "ok" : up || resting.length ? "warn" : "bad"}`;
}

function renderQueue(d) {
  const box = document.getElementById("queue");
  box.replaceChildren(...STATUSES.map((s) => el("div", { class: `count ${s}`, "data-status": s },
    el("b", { text: String(d.counts[s] || 0) }), el("span", { text: s }))));
  const note = document.getElementById("queue-note");
  const late = d.oldest_due_age_seconds || 0;
  const stuck = d.modems.length > 0 && !d.modems.some(sends);
  note.textContent = !d.queue_depth ? "Nothing waiting."
    : stuck ? `${d.queue_depth} waiting; no modem sends now (${d.modems.map((m) => `${m.name} ${sendingWord(m)}`).join(", ")}).`
    : late > 60 ? `${d.queue_depth} waiting; the oldest has been due for ${ago(late)}.`
    : d.oldest_due && new Date(d.oldest_due) > new Date(d.generated_at)
      ? `${d.queue_depth} waiting; the next is due ${when(d.oldest_due)}.`
      : `${d.queue_depth} waiting, going out now.`;
  note.className = late > 600 || (stuck && d.queue_depth) ? "warn" : "muted";
}

function renderChart(hours) {
  const chart = document.getElementById("chart");
  const W = 480, H = 160, top = 8, bottom = 18;
  const max = Math.max(1, ...hours.map((h) => Math.max(h.sent, h.delivered, h.failed)));
  const slot = W / hours.length, bw = Math.max(1, (slot - 3) / 3);
  const y = (v) => H - bottom - (v / max) * (H - top - bottom);
  const parts = [svg("line", { class: "axis", x1: 0, x2: W, y1: H - bottom, y2: H - bottom })];
  hours.forEach((h, i) => {
    const g = svg("g", { "data-hour": h.hour });
    g.append(svg("title", {}, `${when(h.hour)}: ${h.sent} sent, ${h.delivered} delivered, ${h.failed} failed`));
    ["sent", "delivered", "failed"].forEach((k, j) => {
      const v = h[k];
      if (v > 0) g.append(svg("rect", { class: k, x: i * slot + 1 + j * bw, y: y(v), width: bw, height: H - bottom - y(v) }));
    });
    parts.push(g);
    if (i % 6 === 0) {
      const label = new Date(h.hour).toLocaleTimeString([], { hour: "2-digit", minute: "2-digit" });
      parts.push(svg("text", { x: i * slot + 1, y: H - 4 }, label));
    }
  });
  parts.push(svg("text", { x: W - 2, y: top + 4, "text-anchor": "end" }, String(max)));
  chart.replaceChildren(...parts);
  const sum = (k) => hours.reduce((a, h) => a + h[k], 0);
  document.getElementById("chart-total").textContent =
    `${sum("sent")} sent, ${sum("delivered")} delivered, ${sum("failed")} failed in 24 hours.`;
}

const LABELS = { requeue: "Send again", cancel: "Cancel" };

// The buttons of a message that waits for a decision.
function actionBox(item, m) {
  return el("div", { class: "actions" }, m.actions.map((a) => el("button", {
    type: "button", class: a === "cancel" ? "secondary" : "", "data-action": a,
    text: LABELS[a] || a, onclick: () => ask(item, m, a),
  })));
}

// Asks before acting, in place (no pop-up: phones and screen readers handle it better).
function ask(item, m, act) {
  const question = act === "cancel" ? "Cancel it for good?"
    : m.status === "unknown" ? "This one may already be on the phone. Send it again anyway?"
    : "Send it again?";
  const yes = el("button", { type: "button", class: act === "cancel" ? "danger" : "",
    "data-confirm": act, text: act === "cancel" ? "Yes, cancel" : "Yes, send again" });
  const swap = el("div", { class: "actions" }, el("span", { class: "warn", text: question }), yes);
  const no = el("button", { type: "button", class: "secondary", text: "Keep",
    onclick: () => swap.replaceWith(actionBox(item, m)) });
  swap.append(no);
  yes.addEventListener("click", async () => {
    yes.disabled = no.disabled = true;
    try {
      await api(`/v1/messages/${encodeURIComponent(m.id)}/${act}`, { method: "POST" });
      showError("");
      swap.replaceWith(el("div", { class: "actions muted", "data-done": act,
        text: act === "cancel" ? "Cancelled." : "Queued again." }));
      await refresh();
    } catch (e) {
      showError(`${LABELS[act]} failed: ${e.message}`);
      swap.replaceWith(actionBox(item, m));
    }
  });
  item.querySelector(".actions").replaceWith(swap);
}

// A message's status_reason codes in words (a modem's own error is shown as it came).
const REASONS = {
  too_late: "Not sent: it could only have gone out later than its max_lateness.",
  expires_at: "Not sent: it expired first.",
  opted_out: "Cancelled: the number opted out.",
  cancelled: "Cancelled.",
  requeued: "Queued again by hand.",
  daemon_stopped_while_sending: "The gateway stopped while it was being sent: it may be on the phone.",
  no_answer_after_submit: "The modem stopped answering after it was handed over: it may be on the phone.",
  modem_unavailable: "No modem could take it; tried again.",
  send_window: "Outside its send window.",
  cap: "The per-recipient cap of reminder texts was reached.",
  precheck_unavailable: "The billing system's precheck did not answer.",
  precheck: "The billing system's precheck said not to send it.",
  awaiting_reply: "An earlier question to the same number awaited its answer.",
};

// The time a message line shows: when a waiting one goes (a scheduled reminder step: when it
// will be sent, not when it was made), when a sent one went, or its last change.
function messageTime(m) {
  if ((m.status === "queued" || m.status === "scheduled") && m.next_attempt_at) {
    return `goes ${when(m.next_attempt_at)}`;
  }
  if (m.sent_at) return `sent ${when(m.sent_at)}`;
  return when(m.updated_at);
}

// Why a waiting message does not go now, in words, and when it is looked at again.
function holdLine(m) {
  if (!m.hold) return null;
  const next = m.hold.until ? ` Looked at again ${when(m.hold.until)}.` : " Looked at again when a modem is up.";
  return el("div", { class: "warn hold", "data-hold": m.hold.reason, text: `Held: ${m.hold.text}.${next}` });
}

function messageItem(m) {
  const item = el("li", { "data-id": m.id, "data-status": m.status },
    el("div", { class: "msg-head" },
      el("span", { class: "to", text: m.to }),
      el("span", { class: `status ${m.status}`, text: m.status }),
      m.invoice ? el("span", { class: "muted", text: m.step !== null && m.step !== undefined ? `${m.invoice} · step ${m.step + 1}` : m.invoice }) : null,
      el("span", { class: "muted", "data-time": "1", text: messageTime(m) })),
    el("div", { class: "msg-text", text: m.text }),
    holdLine(m),
    !m.hold && m.status_reason && m.status_reason !== m.status
      ? el("div", { class: "muted", "data-reason": m.status_reason, text: REASONS[m.status_reason] || m.status_reason }) : null,
    (m.replies || []).map((r) => el("div", { class: "reply", "data-reply": r.choice || "" },
      `↩ “${r.text}”`, el("span", { class: "muted", text: ` ${r.action} · ${when(r.at)}` }))),
    m.stop ? el("div", { class: "reply", "data-stop": m.stop.inbound_id || "1" },
      `↩ “${m.stop.keyword || "STOP"}”`, el("span", { class: "warn", text: ` opted out · ${when(m.stop.at)}` })) : null);
  if (m.actions && m.actions.length) item.append(actionBox(item, m));
  return item;
}

function renderMessages(id, list, empty) {
  const ul = document.getElementById(id);
  // A question being answered is not swept away by a refresh.
  if (ul.querySelector("[data-confirm]")) return;
  ul.replaceChildren(...(list.length ? list.map(messageItem) : [el("li", { class: "empty", text: empty })]));
}

// Dead deliveries (given up) and failing ones (still retried: a wrong secret, a receiver
// down), each with its last error; a failing one with its next attempt.
function webhookItem(w) {
  const failing = w.state === "pending";
  return el("li", { "data-webhook": w.id, "data-webhook-state": w.state },
    el("div", { class: "msg-head" }, el("b", { text: w.event_type }),
      el("span", { class: failing ? "warn" : "error", text: failing ? "failing, retried" : "given up" }),
      el("span", { class: "muted", text: `${w.attempts} attempts · ${when(w.created_at)}` })),
    el("div", { class: "muted", text: w.url }),
    w.last_error ? el("div", { class: "error", text: w.last_error }) : null,
    failing && w.next_attempt_at ? el("div", { class: "muted", "data-next": "1", text: `Next attempt ${when(w.next_attempt_at)}` }) : null);
}

function renderWebhooks(dead, failing) {
  const ul = document.getElementById("webhooks");
  const all = failing.concat(dead);
  ul.replaceChildren(...(all.length ? all.map(webhookItem)
    : [el("li", { class: "empty", text: "None: every event was delivered." })]));
}

// Customers' texts that answered nothing the gateway sent: a person reads them.
function renderUnmatched(list) {
  const ul = document.getElementById("unmatched");
  ul.replaceChildren(...(list.length ? list.map((u) => el("li", { "data-unmatched": u.id },
    el("div", { class: "msg-head" }, el("span", { class: "to", text: u.from }),
      el("span", { class: "muted", text: `${u.modem} · ${when(u.received_at)}` })),
    el("div", { class: "msg-text", text: u.text })))
    : [el("li", { class: "empty", text: "No unanswered text from a customer." })]));
}

function renderUnreadable(list) {
  const box = document.getElementById("unreadable-box");
  box.hidden = !list.length;
  document.getElementById("unreadable").replaceChildren(...list.map((u) => el("li", { "data-inbound": u.id },
    el("div", { class: "msg-head" }, el("b", { text: u.modem }),
      el("span", { class: "muted", text: when(u.received_at) })),
    el("div", { class: "error", text: u.reason }),
    u.raw_answer ? el("pre", { class: "raw", text: u.raw_answer }) : null)));
}

function renderOptOuts(list, count) {
  document.getElementById("optout-count").textContent =
    count === 1 ? "1 number gets no messages." : `${count} numbers get no messages.`;
  const ul = document.getElementById("optouts");
  ul.replaceChildren(...(list.length ? list.map((o) => el("li", { "data-optout": o.number },
    el("span", { class: "to", text: o.number }), " ",
    el("span", { class: "muted", text: `${o.source}${o.keyword ? ` “${o.keyword}”` : ""} · ${when(o.opted_out_at)}` })))
    : [el("li", { class: "empty", text: "Nobody has opted out." })]));
}

async function refresh() {
  if (busy) return;
  busy = true;
  try {
    const d = await api("/v1/dashboard");
    renderModems(d.modems);
    renderQueue(d);
    renderChart(d.hourly);
    renderMessages("attention", d.attention, "Nothing waits for a decision.");
    renderMessages("recent", d.recent, "No message yet.");
    renderWebhooks(d.failed_webhooks, d.retrying_webhooks || []);
    renderUnmatched(d.unmatched || []);
    renderOptOuts(d.opt_outs, d.opt_out_count);
    renderUnreadable(d.unreadable || []);
    document.getElementById("updated").textContent = `updated ${when(d.generated_at)}`;
    showError("");
    refreshes += 1;
    document.body.dataset.ready = "1";
    document.body.dataset.refreshes = String(refreshes);
  } catch (e) {
    showError(`Cannot reach the gateway: ${e.message}`);
  } finally {
    busy = false;
  }
}

async function search(ev) {
  ev.preventDefault();
  const q = document.getElementById("q").value.trim();
  const out = document.getElementById("search-results");
  if (!q) { out.hidden = true; return; }
  out.hidden = false;
  out.replaceChildren(el("p", { class: "muted", text: "Searching…" }));
  try {
    const r = await api(`/v1/dashboard/search?q=${encodeURIComponent(q)}`);
    const what = r.kind === "number"
      ? `${r.messages.length} message(s) to ${r.number}${r.opted_out ? " (opted out)" : ""}`
      : `${r.messages.length} message(s) about invoice ${r.query}${r.plan_id ? ` (plan ${r.plan_id}, steps in order)` : ""}`;
    const ul = el("ul", { class: "messages", id: "found" },
      r.messages.length ? r.messages.map(messageItem) : [el("li", { class: "empty", text: "Nothing found." })]);
    out.replaceChildren(el("p", { class: "muted", id: "found-summary", text: what }), ul);
  } catch (e) {
    out.replaceChildren(el("p", { class: "error", text: e.message }));
  }
}

async function logout() {
  try { await api("/logout", { method: "POST" }); } catch (_) { /* going anyway */ }
  window.location.assign("/login");
}

document.getElementById("search").addEventListener("submit", search);
document.getElementById("logout").addEventListener("click", logout);
document.addEventListener("visibilitychange", () => { if (!document.hidden) refresh(); });
setInterval(() => { if (!document.hidden) refresh(); }, REFRESH_MS);
refresh();
