// evpark edge UI: live sections over server-sent events, and actions without reloading.
// Sections marked data-live="<event types>" data-fragment="<block>" are fetched again
// (?fragment=<block> on the page's own URL) when an event of those types arrives, and
// all of them on every (re)connection, so the page never misses a change.
(() => {
  "use strict";

  const csrf = document.querySelector('meta[name="csrf-token"]')?.content || "";
  const announcer = document.getElementById("announcer");
  const liveStatus = document.getElementById("live-status");
  const sections = Array.from(document.querySelectorAll("[data-fragment]"));
  const DEBOUNCE_MS = 120;

  // Times are written in the site's time zone by the server (a technician's phone may be
  // set to another); the title gives the same moment in UTC.
  function localizeTimes(root) {
    root.querySelectorAll("time[datetime]").forEach((el) => {
      const moment = new Date(el.getAttribute("datetime"));
      if (!Number.isNaN(moment.getTime()) && !el.title) {
        el.title = moment.toISOString().slice(0, 19).replace("T", " ") + " UTC";
      }
    });
  }

  function announce(message, ok) {
    if (!announcer) return;
    announcer.textContent = message;
    announcer.dataset.kind = ok ? "ok" : "error";
  }

  function setLive(state, text) {
    if (!liveStatus) return;
    liveStatus.dataset.state = state;
    liveStatus.textContent = text;
  }

  // --- live sections -------------------------------------------------------------------

  // Each section refreshes 120 ms after the first change, then at most every 800 ms while
  // changes keep coming (a busy site sends meter values all the time): within a second.
  const MIN_GAP_MS = 800;
  const timers = new Map();
  const lastRefresh = new Map();
  const busy = new Map(); // section -> another refresh wanted while fetching

  function schedule(section) {
    if (timers.has(section)) return;
    const since = performance.now() - (lastRefresh.get(section) ?? -Infinity);
    const wait = Math.max(DEBOUNCE_MS, MIN_GAP_MS - since);
    timers.set(section, setTimeout(() => {
      timers.delete(section);
      refresh(section);
    }, wait));
  }

  async function refresh(section) {
    if (busy.has(section)) {
      busy.set(section, true);
      return;
    }
    busy.set(section, false);
    lastRefresh.set(section, performance.now());
    try {
      const url = new URL(window.location.href);
      url.hash = "";
      url.searchParams.set("fragment", section.dataset.fragment);
      const reply = await fetch(url, { headers: { Accept: "text/html" }, credentials: "same-origin" });
      if (reply.status === 401) {
        window.location.assign("/login?next=" + encodeURIComponent(window.location.pathname));
        return;
      }
      if (!reply.ok) return;
      const html = await reply.text();
      const focused = document.activeElement;
      const key = focused && section.contains(focused) ? focused.dataset.key : null;
      section.innerHTML = html; // server-rendered, autoescaped, same origin
      localizeTimes(section);
      if (key) section.querySelector(`[data-key="${CSS.escape(key)}"]`)?.focus();
      section.dispatchEvent(new CustomEvent("evpark:refreshed", { bubbles: true }));
    } catch (err) {
      // the connection dropped: the next (re)connection refreshes everything
    } finally {
      const again = busy.get(section);
      busy.delete(section);
      if (again) schedule(section);
    }
  }

  function concerns(section, event) {
    const types = (section.dataset.live || "").split(/\s+/);
    if (!types.includes(event.type)) return false;
    const charger = section.dataset.charger;
    return !charger || !event.charger_id || event.charger_id === charger;
  }

  let source = null;
  function connect() {
    source = new EventSource("/ui/events");
    source.onopen = () => {
      setLive("live", "live");
      sections.filter((s) => s.dataset.live).forEach(schedule); // a fresh snapshot
    };
    source.onmessage = (message) => {
      let event;
      try {
        event = JSON.parse(message.data);
      } catch (err) {
        return;
      }
      document.body.dataset.lastEvent = event.type;
      sections.filter((s) => concerns(s, event)).forEach(schedule);
    };
    source.onerror = async () => {
      setLive("down", "reconnecting…");
      if (source.readyState !== EventSource.CLOSED) return; // the browser retries itself
      source.close();
      try {
        const who = await fetch("/ui/whoami", { headers: { Accept: "application/json" } });
        if (who.status === 401) {
          window.location.assign("/login?next=" + encodeURIComponent(window.location.pathname));
          return;
        }
      } catch (err) {
        // edge unreachable: keep trying
      }
      setTimeout(connect, 2000);
    };
  }

  sections
    .filter((s) => s.dataset.refresh)
    .forEach((s) => setInterval(() => refresh(s), Number(s.dataset.refresh) * 1000));

  // --- actions -------------------------------------------------------------------------

  document.addEventListener("submit", async (event) => {
    const form = event.target.closest("form[data-async]");
    if (!form) return;
    event.preventDefault();
    if (form.dataset.confirm && !window.confirm(form.dataset.confirm)) return;
    const buttons = Array.from(form.querySelectorAll("button"));
    const body = new URLSearchParams(new FormData(form, event.submitter));
    buttons.forEach((b) => { b.disabled = true; });
    announce("Sending…", true);
    try {
      const reply = await fetch(form.getAttribute("action"), { // not form.action: a field may be named "action"
        method: "POST",
        body,
        headers: { Accept: "application/json", "X-CSRF-Token": csrf },
        credentials: "same-origin",
      });
      let result;
      try {
        result = await reply.json();
      } catch (err) {
        result = { ok: false, message: `${reply.status} ${reply.statusText}` };
      }
      announce(result.message || (result.ok ? "Done" : "Failed"), Boolean(result.ok));
      if (result.ok && form.hasAttribute("data-reload")) window.location.reload();
    } catch (err) {
      announce("The edge did not answer: check the connection.", false);
    } finally {
      buttons.forEach((b) => { b.disabled = false; });
    }
  });

  // on a phone the menu scrolls sideways in its box: show where the page is in it
  document.querySelector('.top nav [aria-current="page"]')
    ?.scrollIntoView({ block: "nearest", inline: "nearest" });
  localizeTimes(document);
  if (document.body.hasAttribute("data-live-page")) connect();
})();
