// jobline web UI: live updates (server-sent events), toasts, confirmations, local times.
// No framework and no build step. Pages mark what may change with attributes:
//   data-live="URL"         a container whose HTML is re-fetched from URL when it changes
//   data-live-on="..."      which events refresh it: "any", "created", "job:<id>",
//                           "run:<id>" (a pipeline run's jobs), "runs" (any run's jobs),
//                           "schedule:<id>" (a schedule's jobs)
//   data-live-every="S"     also refresh every S seconds (workers have no events)
//   data-live-settle="S"    and once more S seconds after the last event (server caches)
//   tr[data-job]            a job row, updated in place from each event for that job
//   form[data-confirm]      asks first; {count} is filled from data-count (a JSON URL)
//   [data-progress="ID"]    a job's progress bar, moved by "progress" events (also
//                           [data-progress-text="ID"], its label)
//   [data-job-log="ID"]     a job's log, following new lines as they are written (tail -f)
"use strict";

(() => {
  const $ = (sel, root = document) => root.querySelector(sel);
  const $$ = (sel, root = document) => Array.from(root.querySelectorAll(sel));

  // ---- times: server renders UTC; the browser shows local and relative times ----------
  const rtf = new Intl.RelativeTimeFormat(undefined, { numeric: "auto" });
  const absolute = new Intl.DateTimeFormat(undefined, { dateStyle: "medium", timeStyle: "medium" });
  const UNITS = [["day", 86400], ["hour", 3600], ["minute", 60], ["second", 1]];

  function relative(date) {
    const seconds = (date - Date.now()) / 1000;
    for (const [unit, size] of UNITS) {
      if (Math.abs(seconds) >= size || unit === "second") {
        return rtf.format(Math.round(seconds / size), unit);
      }
    }
  }

  function elapsed(seconds) {
    seconds = Math.max(0, Math.floor(seconds));
    if (seconds < 60) return `${seconds} s`;
    if (seconds < 3600) return `${Math.floor(seconds / 60)} min ${seconds % 60} s`;
    return `${Math.floor(seconds / 3600)} h ${Math.floor((seconds % 3600) / 60)} min`;
  }

  function formatTimes(root = document) {
    for (const el of $$("time[datetime]", root)) {
      const value = el.getAttribute("datetime");
      if (!value) continue;
      const date = new Date(value);
      if ("relative" in el.dataset) el.textContent = relative(date);
      else if ("absolute" in el.dataset) el.textContent = absolute.format(date);
      else if ("elapsed" in el.dataset) el.textContent = elapsed((Date.now() - date) / 1000);
      el.title = absolute.format(date);
    }
  }

  // ---- toasts --------------------------------------------------------------------------
  function toast(message, kind = "info", href = null) {
    const box = $("#toasts");
    if (!box) return;
    const item = document.createElement("div");
    item.className = `toast ${kind}`;
    item.setAttribute("role", kind === "error" || kind === "failed" ? "alert" : "status");
    const text = document.createElement(href ? "a" : "span");
    text.textContent = message;
    if (href) text.href = href;
    const close = document.createElement("button");
    close.className = "close";
    close.type = "button";
    close.setAttribute("aria-label", "Dismiss");
    close.textContent = "×";
    close.onclick = () => item.remove();
    item.append(text, close);
    box.append(item);
    while (box.children.length > 5) box.firstElementChild.remove();
    setTimeout(() => item.remove(), kind === "error" || kind === "failed" ? 9000 : 5000);
  }

  // ---- confirmations -------------------------------------------------------------------
  let dialogOpen = false;

  async function confirmSubmit(form, event) {
    if (form.dataset.confirmed) return;
    event.preventDefault();
    const dialog = $("#confirm");
    let text = form.dataset.confirm;
    if (form.dataset.count) {
      try {
        const res = await fetch(form.dataset.count, { headers: { Accept: "application/json" } });
        const { count, more } = await res.json();
        if (count === 0) {
          toast("No jobs match: nothing to do.", "info");
          return;
        }
        text = text.replace("{count}", more ? `more than ${count}` : String(count));
      } catch {
        text = text.replace("{count}", "all");
      }
    }
    if (!dialog || typeof dialog.showModal !== "function") {
      if (window.confirm(text)) submit(form);
      return;
    }
    $("#confirm-text").textContent = text;
    const ok = $("#confirm-ok");
    ok.textContent = form.dataset.confirmOk || "Confirm";
    ok.className = `btn ${form.dataset.confirmKind || "danger"}`;
    dialogOpen = true;
    dialog.returnValue = "";
    dialog.showModal();
    ok.focus();
    dialog.addEventListener(
      "close",
      () => {
        dialogOpen = false;
        if (dialog.returnValue === "ok") submit(form); // the page is left: nothing to refresh
        else flushRefreshes();
      },
      { once: true },
    );
  }

  function submit(form) {
    form.dataset.confirmed = "1";
    form.requestSubmit ? form.requestSubmit() : form.submit();
  }

  // ---- live containers -----------------------------------------------------------------
  const pending = new Set(); // containers waiting for a refresh
  const lastRefresh = new WeakMap();
  const MIN_GAP = 1000; // ms between refreshes of one container

  function scheduleRefresh(el) {
    if (pending.has(el)) return;
    pending.add(el);
    const wait = Math.max(0, (lastRefresh.get(el) || 0) + MIN_GAP - Date.now());
    setTimeout(() => refresh(el), wait);
  }

  // A container whose server keeps its numbers a few seconds (data-live-settle) is fetched
  // once more after the events stop, so that it ends on the latest numbers.
  const settling = new WeakMap();
  function settle(el) {
    const seconds = Number(el.dataset.liveSettle || 0);
    if (!seconds) return;
    clearTimeout(settling.get(el));
    settling.set(el, setTimeout(() => scheduleRefresh(el), seconds * 1000));
  }

  function flushRefreshes() {
    for (const el of pending) {
      pending.delete(el);
      scheduleRefresh(el);
    }
  }

  async function refresh(el) {
    if (dialogOpen) return; // the dialog's form must stay in the page: refresh after it closes
    pending.delete(el);
    lastRefresh.set(el, Date.now());
    if (!el.isConnected || !el.dataset.live) return;
    let res;
    try {
      res = await fetch(el.dataset.live, { headers: { "X-Requested-With": "fetch" } });
    } catch {
      return;
    }
    if (!res.ok || res.redirected) return; // signed out meanwhile: the next navigation shows it
    let html;
    try {
      html = await res.text();
    } catch {
      return;
    }
    // Checked after the last await: a dialog opened while the body arrived holds a form of
    // this container, which must stay in the page until the dialog closes.
    if (dialogOpen) {
      pending.add(el);
      return;
    }
    const before = rowStatuses(el);
    el.innerHTML = html;
    formatTimes(el);
    for (const row of $$("tr[data-job]", el)) {
      const was = before.get(row.dataset.job);
      if (was !== undefined && was !== row.dataset.status) row.classList.add("flash");
      if (was === undefined && before.size) row.classList.add("flash");
    }
  }

  function rowStatuses(el) {
    return new Map($$("tr[data-job]", el).map((r) => [r.dataset.job, r.dataset.status]));
  }

  function refreshAll() {
    for (const el of $$("[data-live]")) scheduleRefresh(el);
  }

  // ---- job events ----------------------------------------------------------------------
  const WORDS = {
    created: "was created",
    started: "started",
    queued: "is queued again",
    succeeded: "succeeded",
    failed: "failed",
    cancelled: "was cancelled",
    terminated: "is cancelled (terminated)", // the status is cancelled, as badges say
  };
  let quietToasts = []; // failures of other jobs, summed up per moment

  function onJob(ev) {
    onProgress(ev); // job events carry the progress too (a job seen when it already reported)
    const watched = String(ev.id) === ($("[data-job]:not(tr)") || {}).dataset?.job;
    for (const row of $$(`tr[data-job="${ev.id}"]`)) updateRow(row, ev);
    for (const el of $$("[data-live-on]")) {
      const on = (el.dataset.liveOn || "").split(" ");
      const inRun = ev.pipeline_run && (on.includes("runs") || on.includes(`run:${ev.pipeline_run}`));
      const fromSchedule = ev.schedule && on.includes(`schedule:${ev.schedule}`);
      if (inRun || fromSchedule || on.includes("any") || on.includes(`job:${ev.id}`) || on.includes(ev.event)) {
        scheduleRefresh(el);
        settle(el);
      }
    }
    for (const badge of $$(`[data-job="${ev.id}"]:not(tr) [data-field="status"]`)) {
      setBadge(badge, shownStatus(ev));
    }
    const url = `${document.body.dataset.jobsUrl}${ev.id}/`;
    if (watched) {
      const detail = ev.error && ev.event === "failed" ? `: ${ev.error}` : "";
      toast(`Job ${ev.id} ${WORDS[ev.event] || ev.event}${detail}`, ev.event);
    } else if (ev.event === "failed" || ev.event === "terminated") {
      quietToasts.push({ ev, url });
      if (quietToasts.length === 1) setTimeout(flushQuietToasts, 1500);
    }
  }

  function flushQuietToasts() {
    const items = quietToasts;
    quietToasts = [];
    if (items.length <= 2) {
      for (const { ev, url } of items) {
        toast(`Job ${ev.id} (${ev.type}) ${WORDS[ev.event]}${ev.error ? `: ${ev.error}` : ""}`, ev.event, url);
      }
    } else {
      const failed = items.filter((i) => i.ev.event === "failed").length;
      const parts = [];
      if (failed) parts.push(`${failed} failed`);
      if (items.length - failed) parts.push(`${items.length - failed} cancelled`);
      toast(`Jobs ${parts.join(", ")}`, "failed");
    }
  }

  // A delivered kafka job shows its executor's side until the executor reports a result.
  function shownStatus(ev) {
    const pending = ev.dispatch === "delivered" || ev.dispatch === "running";
    return ev.status === "succeeded" && pending ? ev.dispatch : ev.status;
  }

  function setBadge(badge, status) {
    badge.className = badge.className.replace(/\bs-\w+/, `s-${status}`);
    badge.textContent = status;
  }

  function updateRow(row, ev) {
    const same = row.dataset.status === ev.status && row.dataset.attempts === String(ev.attempts);
    if (same && (row.dataset.dispatch || "") === (ev.dispatch || "")) return;
    row.dataset.status = ev.status;
    row.dataset.dispatch = ev.dispatch || "";
    row.dataset.attempts = String(ev.attempts);
    const badge = $('[data-field="status"]', row);
    if (badge) setBadge(badge, shownStatus(ev));
    const attempts = $('[data-field="attempts"]', row);
    if (attempts) attempts.textContent = `${ev.attempts}/${ev.max_attempts}`;
    const ran = $('[data-field="ran"]', row);
    if (ran) {
      if (ev.finished_at && ev.started_at) {
        const ms = new Date(ev.finished_at) - new Date(ev.started_at);
        ran.textContent = ms < 1000 ? `${ms} ms` : ms < 10000 ? `${(ms / 1000).toFixed(2)} s` : elapsed(ms / 1000);
      } else if (ev.started_at && ev.status === "running") {
        ran.innerHTML = "";
        const t = document.createElement("time");
        t.setAttribute("datetime", ev.started_at);
        t.dataset.elapsed = "";
        ran.append(t);
        formatTimes(ran);
      }
    }
    const error = $('[data-field="error"]', row);
    if (error) {
      error.textContent = ev.error || "";
      error.title = ev.error || "";
    }
    row.classList.remove("flash");
    void row.offsetWidth; // restart the animation
    row.classList.add("flash");
  }

  // ---- progress and the job's log ------------------------------------------------------
  function progressLabel(ev) {
    const pct = Math.round(ev.progress * 100);
    return ev.progress_message ? `${pct} % · ${ev.progress_message}` : `${pct} %`;
  }

  function onProgress(ev) {
    if (ev.progress !== null && ev.progress !== undefined) {
      const pct = Math.round(ev.progress * 100);
      for (const bar of $$(`[data-progress="${ev.id}"]`)) {
        bar.classList.remove("hidden");
        bar.setAttribute("value", String(pct));
        bar.title = progressLabel(ev);
      }
      for (const text of $$(`[data-progress-text="${ev.id}"]`)) text.textContent = progressLabel(ev);
    }
    if (jobLog && String(ev.id) === jobLog.id) jobLog.update(ev);
  }

  // The job page's log: the latest attempt's lines, then only newer ones (?after=) whenever
  // an event says the job logged more. The stored log is capped (the tail is kept); so is
  // what the page shows.
  class JobLog {
    constructor(box) {
      this.box = box;
      this.id = box.dataset.jobLog;
      this.pre = $("[data-log-lines]", box);
      this.follow = $("[data-log-follow]", box);
      this.attempt = null;
      this.after = 0;
      this.dropped = 0;
      this.maxLines = 1000;
      this.busy = false;
      this.again = false;
      this.latest = true; // ask for the latest attempt (a new one may have started)
    }

    update(ev) {
      if (this.attempt !== null && ev.attempts > this.attempt) this.latest = true;
      if (this.latest || (ev.log_lines || 0) > this.after || ev.event !== "progress") this.load();
    }

    async load() {
      if (this.busy) {
        this.again = true;
        return;
      }
      this.busy = true;
      try {
        let more = true;
        while (more || this.again) {
          this.again = false;
          more = await this.fetchPage();
        }
      } finally {
        this.busy = false;
      }
    }

    async fetchPage() {
      const params = new URLSearchParams({ after: this.latest ? "0" : String(this.after) });
      if (!this.latest && this.attempt !== null) params.set("attempt", String(this.attempt));
      let log;
      try {
        const res = await fetch(`${this.box.dataset.logUrl}?${params}`, { headers: { Accept: "application/json" } });
        if (!res.ok) return false;
        log = await res.json();
      } catch {
        return false;
      }
      this.maxLines = log.limits.max_lines;
      if (log.attempt === null) return false;
      if (log.attempt !== this.attempt) {
        this.attempt = log.attempt;
        this.after = 0;
        this.pre.textContent = "";
      }
      this.latest = false;
      if (this.after === 0) this.dropped = log.dropped;
      this.append(log.lines.filter((line) => line.seq > this.after));
      this.after = Math.max(this.after, log.next_after);
      this.show(log);
      return log.more;
    }

    append(lines) {
      const nodes = lines.map((line) => {
        const row = document.createElement("span");
        row.className = `lv-${line.level}`;
        row.dataset.seq = String(line.seq);
        row.title = `${line.level} ${absolute.format(new Date(line.time))}`;
        row.textContent = `${line.text}\n`;
        return row;
      });
      this.pre.append(...nodes);
      while (this.pre.childElementCount > this.maxLines) this.pre.firstElementChild.remove();
      const first = this.pre.firstElementChild;
      if (first) this.dropped = Math.max(this.dropped, Number(first.dataset.seq) - 1);
      if (nodes.length && this.follow.checked) this.pre.scrollTop = this.pre.scrollHeight;
    }

    show(log) {
      const count = this.pre.childElementCount;
      this.pre.hidden = count === 0;
      $("[data-log-empty]", this.box).hidden = count > 0;
      const attempts = log.attempts.length > 1 ? ` (of ${log.attempts.join(", ")})` : "";
      $("[data-log-attempt]", this.box).textContent = `attempt ${this.attempt}${attempts}, ${this.after} lines`;
      const dropped = $("[data-log-dropped]", this.box);
      dropped.hidden = this.dropped === 0;
      dropped.textContent =
        `… ${this.dropped} earlier lines dropped: each attempt keeps its last ` +
        `${log.limits.max_lines} lines (${Math.round(log.limits.max_bytes / 1024)} KiB).`;
    }
  }
  let jobLog = null;

  // ---- the event stream ----------------------------------------------------------------
  function connect() {
    const url = document.body.dataset.events;
    const live = $("#live");
    if (!url || !window.EventSource) return;
    const label = live && $(".live-label", live);
    const setState = (state, text) => {
      if (!live) return;
      live.classList.toggle("on", state === "on");
      live.classList.toggle("off", state === "off");
      live.title = `Live updates: ${text}`;
      if (label) label.textContent = text;
    };
    const source = new EventSource(url);
    let fallback = null;
    source.addEventListener("ready", () => {
      setState("on", "live");
      clearInterval(fallback);
      refreshAll(); // anything that changed before the stream was listening
      if (jobLog) jobLog.load();
    });
    for (const name of ["resync", "overflow"]) source.addEventListener(name, refreshAll);
    source.addEventListener("job", (e) => onJob(JSON.parse(e.data)));
    source.addEventListener("progress", (e) => onProgress(JSON.parse(e.data)));
    source.onerror = () => {
      if (source.readyState === EventSource.CLOSED) {
        // Refused (e.g. a WSGI server): show it, and poll instead.
        setState("off", "updates every 15 s");
        fallback = setInterval(refreshAll, 15000);
      } else {
        setState("wait", "reconnecting");
      }
    };
  }

  // ---- small behaviours ----------------------------------------------------------------
  function wire() {
    formatTimes();
    setInterval(() => formatTimes(), 1000);
    for (const f of JSON.parse(($("#flashes") || { textContent: "[]" }).textContent || "[]")) {
      toast(f.message, f.level);
    }
    document.addEventListener("submit", (e) => {
      if (e.target.matches("form[data-confirm]")) confirmSubmit(e.target, e);
    });
    for (const el of $$("[data-live-every]")) {
      setInterval(() => scheduleRefresh(el), Number(el.dataset.liveEvery) * 1000);
    }
    // Filters apply as they change; datetime-local is read in the browser's time zone.
    for (const form of $$("form[data-autosubmit]")) {
      const tz = $("[data-tz]", form);
      if (tz) tz.value = String(new Date().getTimezoneOffset());
      form.addEventListener("change", (e) => {
        if (e.target.matches("select, input[type=radio]")) form.requestSubmit();
      });
      form.addEventListener("submit", () => {
        for (const el of $$("input, select", form)) if (!el.value) el.disabled = true; // short URLs
      });
    }
    for (const row of $$(".table.jobs tbody")) {
      row.addEventListener("click", (e) => {
        const tr = e.target.closest("tr");
        if (!tr || e.target.closest("a, button, input") || getSelection().toString()) return;
        const link = $("a", tr);
        if (link) link.click();
      });
    }
    for (const input of $$("[data-filter-list]")) {
      input.addEventListener("input", () => {
        const words = input.value.toLowerCase().split(/\s+/).filter(Boolean);
        for (const li of $$("[data-filter-text]", $(input.dataset.filterList))) {
          const text = li.dataset.filterText.toLowerCase();
          li.hidden = !words.every((w) => text.includes(w));
        }
      });
    }
    document.addEventListener("keydown", (e) => {
      if (e.key !== "/" || e.ctrlKey || e.metaKey || e.altKey) return;
      if (e.target.closest("input, textarea, select, [contenteditable]")) return;
      const target = $('[data-hotkey="/"]');
      if (target) {
        e.preventDefault();
        target.focus();
      }
    });
    const logBox = $("[data-job-log]");
    if (logBox) {
      jobLog = new JobLog(logBox);
      jobLog.load();
    }
    connect();
  }

  window.jobline = { toast, formatTimes };
  if (document.readyState === "loading") document.addEventListener("DOMContentLoaded", wire);
  else wire();
})();
