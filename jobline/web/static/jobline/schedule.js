// The schedule form's preview: the rule in words and its next fire times, as it is typed.
"use strict";

(() => {
  const box = document.getElementById("preview");
  const form = document.getElementById("job-form");
  if (!box || !form) return;
  const kind = form.querySelector("[name=kind]");
  const rule = form.querySelector("[name=rule]");
  const zone = form.querySelector("[name=timezone]");
  const browserZone = Intl.DateTimeFormat().resolvedOptions().timeZone;
  const local = new Intl.DateTimeFormat(undefined, {
    weekday: "short",
    year: "numeric",
    month: "short",
    day: "numeric",
    hour: "2-digit",
    minute: "2-digit",
    second: "2-digit",
  });
  let timer = null;
  let asked = 0;

  const hint = () => {
    rule.placeholder = kind.selectedOptions[0]?.dataset.hint || "";
  };

  async function update() {
    const params = new URLSearchParams();
    for (const input of form.querySelectorAll("[data-preview]")) params.set(input.name, input.value);
    if (!rule.value.trim()) {
      box.innerHTML = '<p class="muted">Type a rule to see when it fires.</p>';
      return;
    }
    const ticket = ++asked;
    let body;
    try {
      const res = await fetch(`${box.dataset.url}?${params}`, { headers: { Accept: "application/json" } });
      body = await res.json();
    } catch {
      return;
    }
    if (ticket !== asked) return; // an older answer arriving late
    box.replaceChildren();
    box.classList.toggle("bad", Boolean(body.error));
    if (body.error) {
      box.append(Object.assign(document.createElement("p"), { className: "field-error", textContent: body.error.message }));
      return;
    }
    box.append(Object.assign(document.createElement("p"), { className: "describe", textContent: body.description }));
    if (!body.runs.length) {
      box.append(Object.assign(document.createElement("p"), { className: "muted", textContent: "It would not fire again." }));
      return;
    }
    const list = document.createElement("ol");
    list.className = "runs";
    for (const run of body.runs) {
      const li = document.createElement("li");
      li.append(run.local);
      if ((zone.value || "UTC") !== browserZone) {
        const yours = ` · ${local.format(new Date(run.at))} your time`;
        li.append(Object.assign(document.createElement("span"), { className: "muted", textContent: yours }));
      }
      list.append(li);
    }
    box.append(Object.assign(document.createElement("p"), { className: "muted small", textContent: `Next ${body.runs.length} runs:` }), list);
  }

  form.addEventListener("input", (e) => {
    if (!e.target.matches("[data-preview]")) return;
    clearTimeout(timer);
    timer = setTimeout(update, 200);
  });
  kind.addEventListener("change", () => {
    hint();
    update();
  });
  hint();
  update();
})();
