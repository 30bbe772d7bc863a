// The demo's simulated phones (smsgate demo only): what the simulated network delivered to
// each customer, and a box to answer as that customer (POST /v1/demo/phone/reply). Uses the
// page's helpers from dashboard.js (el, api, when, refresh); DOM calls only, never innerHTML.
"use strict";
(() => {
  const PHONE_REFRESH_MS = 3000;
  const SHOWN = 6;
  let phoneBusy = false;

  function bubbles(p) {
    const texts = p.received.map((t) => ({ ...t, dir: "in" }))
      .concat(p.replied.map((t) => ({ ...t, dir: "out" })))
      .sort((a, b) => new Date(a.at) - new Date(b.at))
      .slice(-SHOWN);
    return texts.map((t) => el("div", { class: "bubble", "data-dir": t.dir },
      t.text, el("span", { class: "muted", text: `${t.dir === "in" ? "received" : "you answered"} · ${when(t.at)}` })));
  }

  async function answer(ev, number) {
    ev.preventDefault();
    const form = ev.currentTarget;
    const input = form.querySelector("input[name=text]");
    const button = form.querySelector("button");
    const status = form.querySelector(".phone-status");
    const text = input.value;
    if (!text.trim()) return;
    button.disabled = true;
    try {
      await api("/v1/demo/phone/reply", {
        method: "POST",
        headers: { "Content-Type": "application/json" },
        body: JSON.stringify({ from: number, text }),
      });
      input.value = "";
      status.className = "phone-status muted";
      status.dataset.sent = text;
      status.textContent = `Sent “${text}” as ${number}.`;
      await refreshPhones();
      // The gateway reads it off the simulated modem within moments: show it under its message.
      for (const ms of [1000, 3000]) {
        setTimeout(() => { if (typeof refresh === "function") refresh(); }, ms);
      }
    } catch (e) {
      status.className = "phone-status error";
      delete status.dataset.sent;
      status.textContent = `Not sent: ${e.message}`;
    } finally {
      button.disabled = false;
    }
  }

  function phoneItem(p) {
    const form = el("form", { class: "row-form", onsubmit: (ev) => answer(ev, p.number) },
      el("div", { class: "row" },
        el("input", { type: "text", name: "text", maxlength: "1000", autocomplete: "off",
          placeholder: "Answer as this customer, e.g. 1", "aria-label": `Answer as ${p.number}` }),
        el("button", { type: "submit", "data-action": "reply", text: "Send" })),
      el("div", { class: "phone-status muted", role: "status" }));
    return el("li", { "data-number": p.number },
      el("div", { class: "phone-number", text: p.number }),
      el("div", { class: "conversation" }),
      form);
  }

  // Existing phones are updated in place, so that an answer being typed survives a refresh.
  function renderPhones(numbers) {
    const ul = document.getElementById("phones");
    ul.querySelector(":scope > li.empty")?.remove();
    if (!numbers.length && !ul.children.length) {
      ul.append(el("li", { class: "empty", text: "No text delivered yet." }));
      return;
    }
    for (const p of numbers.slice().reverse()) {
      let item = ul.querySelector(`:scope > li[data-number="${CSS.escape(p.number)}"]`);
      if (!item) {
        item = phoneItem(p);
        ul.prepend(item);
      }
      item.querySelector(".conversation").replaceChildren(...bubbles(p));
    }
  }

  async function refreshPhones() {
    if (phoneBusy) return;
    phoneBusy = true;
    try {
      const v = await api("/v1/demo/phone");
      renderPhones(v.numbers);
      document.getElementById("demo-phone").dataset.ready = "1";
    } catch (e) {
      showError(`Cannot read the simulated phones: ${e.message}`);
    } finally {
      phoneBusy = false;
    }
  }

  setInterval(() => { if (!document.hidden) refreshPhones(); }, PHONE_REFRESH_MS);
  refreshPhones();
})();
