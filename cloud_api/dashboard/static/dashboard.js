// Locus dashboard: live updates over server-sent events, drag-and-drop, multi-select and
// keyboard shortcuts on the board.
// Plain JavaScript, no dependencies. Every page works without it: this only saves reloads.
(function () {
  "use strict";

  // Fetch a region's fresh HTML and swap it in. One request at a time; events that arrive
  // meanwhile cause one more refresh afterwards, so a burst costs at most two requests.
  function refresher(container, url) {
    var running = false;
    var again = false;
    function run() {
      if (running) {
        again = true;
        return;
      }
      running = true;
      fetch(url, { headers: { Accept: "text/html" }, credentials: "same-origin" })
        .then(function (response) {
          if (response.ok && !response.redirected) {
            return response.text().then(function (html) { swap(container, html); });
          }
        })
        .catch(function () { /* offline for a moment: the next event retries */ })
        .then(function () {
          running = false;
          if (again) {
            again = false;
            run();
          }
        });
    }
    return run;
  }

  // Replace the region's HTML, keeping what the person is typing (by element id) and focus.
  function swap(container, html) {
    var kept = {};
    container.querySelectorAll("textarea[id], input[id], select[id]").forEach(function (el) {
      if (el.value) kept[el.id] = el.value;
    });
    var focused = document.activeElement && container.contains(document.activeElement)
      ? document.activeElement.id : null;
    container.innerHTML = html;
    Object.keys(kept).forEach(function (id) {
      var el = document.getElementById(id);
      if (el) el.value = kept[id];
    });
    if (focused) {
      var again = document.getElementById(focused);
      if (again) again.focus();
    }
    document.dispatchEvent(new CustomEvent("locus:refreshed", { detail: container.id }));
  }

  function listen(url, handlers) {
    var source = new EventSource(url);
    Object.keys(handlers).forEach(function (kind) {
      source.addEventListener(kind, handlers[kind]);
    });
    source.addEventListener("open", function () { document.body.dataset.live = "on"; });
    source.addEventListener("error", function () { document.body.dataset.live = "off"; });
    window.addEventListener("pagehide", function () { source.close(); });
    return source;
  }

  function notice(text) {
    var flash = document.querySelector("p.flash");
    if (!flash) {
      flash = document.createElement("p");
      flash.setAttribute("role", "status");
      document.querySelector("main").prepend(flash);
    }
    flash.className = "flash error";
    flash.textContent = text;
  }

  // ---- browser notifications (opt-in) when a task starts waiting for a person -------------
  // Only while a page with a live stream is open: the board's project stream, a task's own.
  var NOTIFY_KEY = "locus.notify";
  function notifying() {
    return "Notification" in window && Notification.permission === "granted"
      && localStorage.getItem(NOTIFY_KEY) === "on";
  }
  function notifyToggle() {
    var button = document.getElementById("notify-toggle");
    if (!button || !("Notification" in window)) return;
    function show() {
      button.textContent = notifying() ? "Notifications on" : "Notify me";
      button.setAttribute("aria-pressed", notifying() ? "true" : "false");
    }
    button.hidden = false;
    show();
    button.addEventListener("click", function () {
      if (notifying()) {
        localStorage.removeItem(NOTIFY_KEY);
        return show();
      }
      Notification.requestPermission().then(function (answer) {
        if (answer === "granted") localStorage.setItem(NOTIFY_KEY, "on");
        show();
      });
    });
  }
  var WAITING = (document.body.dataset.needsYou || "").split(" ");
  var ASKS = { needs_input: "asks a question", awaiting_review: "awaits review", verification: "awaits approval" };
  // A status event: notify when the task has just entered a needs-you state.
  function maybeNotify(message, title) {
    if (!notifying() || !message || WAITING.indexOf(message.to_status) < 0) return;
    var data = message.data || {};
    var name = title || ("Task #" + message.task_id);
    var note = new Notification(name + " " + (ASKS[message.to_status] || "needs you"), {
      body: String(data.question || data.summary || ""),
      tag: "locus-task-" + message.task_id + "-" + message.to_status,
    });
    note.onclick = function () {
      window.focus();
      window.location.href = "/tasks/" + Number(message.task_id);
    };
  }
  function cardTitle(id) {
    var link = document.querySelector("#task-" + Number(id) + " .title");
    return link ? link.textContent : null;
  }

  // ---- the board ---------------------------------------------------------------------------
  function board(root) {
    // A change re-fetches the one card it names (or drops it when it left this board's
    // filters), after a short random delay so that many open boards do not all ask at once.
    // After a lost connection the whole board is fetched again.
    var refresh = refresher(root, root.dataset.refresh);
    var cardUrl = root.dataset.card;
    var pending = {};
    var moved = {};  // the newest status event per card being fetched: notified once it is in
    function changed(event) {
      var message = JSON.parse(event.data) || {};
      var id = message.task_id;
      if (event.type === "status" && id) moved[id] = message;
      if (!id || pending[id]) return;
      pending[id] = setTimeout(function () { fetchCard(id); }, Math.random() * 250);
    }
    function fetchCard(id) {
      fetch(cardUrl.replace("TASK", id), { headers: { Accept: "text/html" }, credentials: "same-origin" })
        .then(function (response) {
          delete pending[id];
          if (response.status === 204) return placeCard(id, null);
          if (response.ok && !response.redirected) return response.text().then(function (html) { placeCard(id, html); });
        })
        .catch(function () { delete pending[id]; })
        .then(function () {
          if (moved[id]) maybeNotify(moved[id], cardTitle(id));
          delete moved[id];
        });
    }
    function placeCard(id, html) {
      var old = document.getElementById("task-" + id);
      if (old) old.remove();
      if (html) {
        var holder = document.createElement("ol");
        holder.innerHTML = html.trim();
        var card = holder.firstElementChild;
        var list = root.querySelector('.column[data-statuses~="' + card.dataset.status + '"] .cards');
        if (list) {
          // Keep the board's order: higher priority first, then older tasks first.
          var before = Array.prototype.find.call(list.children, function (other) {
            var p = Number(other.dataset.priority), q = Number(card.dataset.priority);
            return p < q || (p === q && Number(other.dataset.task) > Number(card.dataset.task));
          });
          list.insertBefore(card, before || null);
        }
      }
      root.querySelectorAll(".column").forEach(function (column) {
        column.querySelector(".count").textContent = column.querySelectorAll(".card").length;
      });
      document.dispatchEvent(new CustomEvent("locus:refreshed", { detail: root.id }));
    }
    var source = listen(root.dataset.live, { created: changed, status: changed, updated: changed });
    var lost = false;
    source.addEventListener("error", function () { lost = true; });
    source.addEventListener("open", function () {
      if (lost) refresh();
      lost = false;
    });

    var dragged = null;
    root.addEventListener("dragstart", function (event) {
      dragged = event.target.closest ? event.target.closest(".card") : null;
      if (!dragged) return;
      event.dataTransfer.setData("text/plain", dragged.dataset.task);
      event.dataTransfer.effectAllowed = "move";
      dragged.classList.add("dragging");
      dragged.querySelectorAll("button[data-to]").forEach(function (button) {
        var column = root.querySelector('.column[data-statuses~="' + button.dataset.to + '"]');
        if (column) column.classList.add("drop-ok");
      });
    });
    root.addEventListener("dragend", function () {
      if (dragged) dragged.classList.remove("dragging");
      root.querySelectorAll(".drop-ok").forEach(function (c) { c.classList.remove("drop-ok"); });
      dragged = null;
    });
    root.addEventListener("dragover", function (event) {
      var column = event.target.closest ? event.target.closest(".column") : null;
      if (column && column.classList.contains("drop-ok")) event.preventDefault();
    });
    root.addEventListener("drop", function (event) {
      var column = event.target.closest ? event.target.closest(".column") : null;
      if (!dragged || !column) return;
      event.preventDefault();
      // Only along allowed moves: the card's own button for that column says how (a column
      // may hold several statuses; a card has at most one move into any of them).
      var button = Array.prototype.find.call(dragged.querySelectorAll("button[data-to]"), function (b) {
        return column.dataset.statuses.split(" ").indexOf(b.dataset.to) >= 0;
      });
      var id = dragged.dataset.task;
      if (button) post(button).then(function () { fetchCard(id); });
    });
  }

  // Send one of a card's move buttons without leaving the page.
  function post(button) {
    var form = document.getElementById(button.getAttribute("form"));
    var body = new FormData(form);
    body.set(button.name, button.value);
    return fetch(button.formAction, {
      method: "POST",
      body: body,
      headers: { Accept: "application/json" },
      credentials: "same-origin",
    }).then(function (response) {
      if (response.ok) return;
      return response.json().then(function (problem) {
        notice("Not done: " + (problem.detail || problem.title));
      }, function () { notice("Not done (HTTP " + response.status + ")"); });
    });
  }

  // ---- selection and keyboard shortcuts on the board ----------------------------------------
  // The selection is kept by task id, so a card re-rendered by a live update stays selected.
  // The checkboxes belong to the bulk form (form="bulk"): without JavaScript, ticking boxes
  // and pressing "Move selected" does the same.
  // Keys typed into a field are text, not shortcuts (a ticked checkbox is no field).
  var NOT_TYPED = ["checkbox", "radio", "button", "submit", "reset"];
  function typing(target) {
    if (!target) return false;
    if (target.isContentEditable || target.tagName === "TEXTAREA" || target.tagName === "SELECT") return true;
    return target.tagName === "INPUT" && NOT_TYPED.indexOf(target.type) < 0;
  }

  function selection(root) {
    var bulk = document.getElementById("bulk");
    var selected = {};
    var anchor = null;  // the box clicked last: a shift-click selects from it
    function boxes() { return Array.prototype.slice.call(root.querySelectorAll("input.select")); }
    function sync() {
      var count = 0;
      var present = {};
      boxes().forEach(function (box) {
        present[box.value] = true;
        box.checked = !!selected[box.value];
        box.closest(".card").classList.toggle("selected", box.checked);
        if (box.checked) count += 1;
      });
      Object.keys(selected).forEach(function (id) { if (!present[id]) delete selected[id]; });
      if (!bulk) return;
      bulk.hidden = count === 0;
      document.getElementById("selected-count").textContent = count + " selected";
    }
    function set(id, on) {
      if (on) selected[id] = true; else delete selected[id];
    }
    root.addEventListener("click", function (event) {
      var box = event.target.closest ? event.target.closest("input.select") : null;
      if (!box) return;
      var all = boxes();
      if (event.shiftKey && anchor !== null) {
        var from = all.findIndex(function (b) { return b.value === anchor; });
        var to = all.indexOf(box);
        if (from >= 0) {
          all.slice(Math.min(from, to), Math.max(from, to) + 1).forEach(function (b) { set(b.value, box.checked); });
        }
      }
      set(box.value, box.checked);
      anchor = box.value;
      sync();
    });
    document.addEventListener("locus:refreshed", sync);
    var clear = document.getElementById("bulk-clear");
    if (clear) {
      clear.hidden = false;
      clear.addEventListener("click", function () { selected = {}; sync(); });
    }
    sync();
    return {
      toggle: function (id) { set(id, !selected[id]); sync(); },
      clear: function () { selected = {}; sync(); },
      any: function () { return Object.keys(selected).length > 0; },
    };
  }

  function shortcuts(root, selected) {
    var help = document.getElementById("shortcuts");
    var menu = document.getElementById("move-menu");
    var bulk = document.getElementById("bulk");
    var search = document.getElementById("search");
    var newTask = document.getElementById("new-task-link");
    var opener = document.getElementById("shortcuts-open");
    var moving = false;
    if (opener) {
      opener.hidden = false;
      opener.addEventListener("click", function () { help.showModal(); });
    }
    function cards() { return Array.prototype.slice.call(root.querySelectorAll(".card")); }
    function current() {
      var active = document.activeElement;
      return active && active.closest ? active.closest("#board .card") : null;
    }
    function step(by) {
      var all = cards();
      if (!all.length) return;
      var at = all.indexOf(current());
      var next = all[at < 0 ? (by > 0 ? 0 : all.length - 1) : Math.min(all.length - 1, Math.max(0, at + by))];
      root.querySelectorAll(".card.cursor").forEach(function (c) { c.classList.remove("cursor"); });
      next.classList.add("cursor");
      next.querySelector(".title").focus();
      next.scrollIntoView({ block: "nearest" });
    }
    function openMenu() {
      if (!bulk || !menu) return;
      var card = current();
      if (!selected.any() && card) selected.toggle(card.dataset.task);
      if (!selected.any()) return notice("Select cards first (x, or tick their boxes).");
      moving = true;
      menu.hidden = false;
      menu.querySelector("button").focus();
    }
    function closeMenu() {
      moving = false;
      if (menu) menu.hidden = true;
    }
    function move(to) {
      closeMenu();
      document.getElementById("bulk-to").value = to;
      bulk.requestSubmit();
    }
    if (menu) {
      menu.addEventListener("click", function (event) {
        var button = event.target.closest("button[data-to]");
        if (button) move(button.dataset.to);
      });
    }
    document.addEventListener("keydown", function (event) {
      if (event.ctrlKey || event.metaKey || event.altKey || event.isComposing) return;
      if (event.key === "Escape") {
        if (moving) return closeMenu();
        if (!help.open) selected.clear();
        return;
      }
      if (help.open || typing(event.target)) return;
      if (moving) {
        var choices = menu.querySelectorAll("button[data-to]");
        var index = Number(event.key) - 1;
        event.preventDefault();
        if (index >= 0 && index < choices.length) move(choices[index].dataset.to);
        else closeMenu();
        return;
      }
      var card = current();
      var actions = {
        "/": function () { search.focus(); search.select(); },
        "?": function () { help.showModal(); },
        "j": function () { step(1); },
        "k": function () { step(-1); },
        "o": function () { if (card) card.querySelector(".title").click(); },
        "c": function () { if (newTask) window.location.href = newTask.href; },
        "x": function () { if (card && bulk) selected.toggle(card.dataset.task); },
        "m": openMenu,
      };
      var run = actions[event.key];
      if (!run) return;
      event.preventDefault();
      run();
    });
  }

  // ---- a task ------------------------------------------------------------------------------
  function task(root) {
    var live = document.getElementById("live");
    var log = document.getElementById("log");
    var refresh = refresher(live, root.dataset.refresh);
    // Each attempt's lines go in its own section, made when its first line arrives.
    function section(attempt) {
      var number = String(Number(attempt) || 1);
      var found = document.getElementById("log-attempt-" + number);
      if (found) return found.querySelector("pre");
      var wrapper = document.createElement("section");
      wrapper.className = "attempt-log";
      wrapper.id = "log-attempt-" + number;
      wrapper.dataset.attempt = number;
      var heading = document.createElement("h3");
      heading.textContent = "Attempt " + number;
      wrapper.appendChild(heading);
      wrapper.appendChild(document.createElement("pre"));
      log.appendChild(wrapper);
      return wrapper.querySelector("pre");
    }
    function append(event) {
      var message = JSON.parse(event.data) || {};
      var data = message.data || {};
      var pre = section(message.attempt);
      var line = document.createElement("span");
      line.className = "log-line stream-" + String(data.stream || "agent").replace(/[^a-z]/g, "");
      line.textContent = data.text || "";
      var atEnd = pre.scrollTop + pre.clientHeight >= pre.scrollHeight - 8;
      pre.appendChild(line);
      if (atEnd) pre.scrollTop = pre.scrollHeight;
      var empty = document.getElementById("log-empty");
      if (empty) empty.remove();
    }
    function status(event) {
      var title = document.getElementById("task-title");
      maybeNotify(JSON.parse(event.data), title ? "#" + root.dataset.task + " " + title.textContent : null);
      refresh();
    }
    listen(root.dataset.live, {
      log: append,
      status: status,
      updated: refresh,
      artifact: refresh,
      comment: refresh,
    });
  }

  // ---- a slug that follows the name, until the person edits it ---------------------------
  // The same rule as slug_from() in cloud_api/dashboard/views/projects.py.
  function slugFrom(name) {
    return name.normalize("NFKD").replace(/[^\x00-\x7f]/g, "").toLowerCase()
      .replace(/[^a-z0-9]+/g, "-").replace(/^-+|-+$/g, "").slice(0, 63).replace(/-+$/, "");
  }
  function slugs() {
    document.querySelectorAll("input[data-slug-from]").forEach(function (slug) {
      var name = slug.form && slug.form.elements.namedItem(slug.dataset.slugFrom);
      if (!name) return;
      var edited = false;
      slug.addEventListener("input", function () { edited = slug.value !== ""; });
      name.addEventListener("input", function () {
        if (!edited) slug.value = slugFrom(name.value);
      });
    });
  }

  document.addEventListener("DOMContentLoaded", function () {
    slugs();
    notifyToggle();
    var root = document.getElementById("board");
    if (root && root.dataset.live) {
      board(root);
      shortcuts(root, selection(root));
    }
    var page = document.getElementById("task");
    if (page && page.dataset.live) task(page);
  });
})();
