// The live supervisor's board. The page is complete without this script; with it, the
// queue and agent tables follow /board/events (server-sent events carrying the JSON of
// GET /api/v1/board) without a reload. No framework; text goes in as text, never HTML.
"use strict";
(function () {
  var root = document.getElementById("board");
  if (!root || !window.EventSource || !window.JSON) {
    return;
  }
  var live = document.getElementById("board-live");
  var queueRows = document.getElementById("queue-rows");
  var agentRows = document.getElementById("agent-rows");

  function el(tag, cls, text) {
    var e = document.createElement(tag);
    if (cls) {
      e.className = cls;
    }
    if (text !== undefined) {
      e.textContent = String(text);
    }
    return e;
  }

  // age shows the oldest waiting item's age like the server does (web.waitingAge).
  function age(s, queued) {
    if (!queued) {
      return "\u2013";
    }
    if (s < 60) {
      return "just now";
    }
    if (s < 3600) {
      return Math.floor(s / 60) + " min";
    }
    if (s < 86400) {
      return Math.floor(s / 3600) + " h";
    }
    return Math.floor(s / 86400) + " d";
  }

  function queueRow(q) {
    var st = q.by_state || {};
    var tr = el("tr");
    tr.id = "queue-" + q.id;
    if (q.breached > 0) {
      tr.className = "breached";
    } else if (q.at_risk > 0) {
      tr.className = "at-risk";
    }
    var name = el("td", "name");
    var a = el("a", "", q.name);
    a.href = "/board/queues/" + q.id;
    name.appendChild(a);
    if (!q.enabled) {
      name.appendChild(document.createTextNode(" "));
      name.appendChild(el("span", "badge status-disabled", "disabled"));
    }
    tr.appendChild(name);
    tr.appendChild(el("td", "depth", q.depth));
    tr.appendChild(el("td", "queued", st.queued || 0));
    tr.appendChild(el("td", "offered", st.offered || 0));
    tr.appendChild(el("td", "assigned", st.assigned || 0));
    tr.appendChild(el("td", "pending", st.pending || 0));
    tr.appendChild(el("td", "on_hold", st.on_hold || 0));
    tr.appendChild(el("td", "oldest", age(q.oldest_age_s, st.queued || 0)));
    tr.appendChild(el("td", "at_risk" + (q.at_risk ? " warn" : ""), q.at_risk));
    tr.appendChild(el("td", "breached" + (q.breached ? " bad" : ""), q.breached));
    var limit = el("td", "limit", q.max_depth ? q.max_depth : "\u2013");
    if (q.max_depth && q.depth >= q.max_depth) {
      limit.appendChild(document.createTextNode(" "));
      limit.appendChild(el("span", "badge status-error", "full"));
    }
    tr.appendChild(limit);
    return tr;
  }

  function agentRow(ag) {
    var cap = ag.capacity > 0 ? ag.capacity : 5;
    var tr = el("tr");
    tr.id = "agent-" + ag.user_id;
    var name = el("td", "name", ag.name + " ");
    name.appendChild(el("span", "muted", ag.username + " \u00b7 " + ag.role));
    tr.appendChild(name);
    var status = el("td", "status");
    status.appendChild(el("span", "badge agent-" + ag.status, ag.status));
    tr.appendChild(status);
    var load = el("td", "load");
    var m = el("meter", "", ag.load + " of " + cap);
    m.min = 0;
    m.max = cap;
    m.high = cap;
    m.value = ag.load;
    load.appendChild(m);
    load.appendChild(document.createTextNode(" "));
    load.appendChild(el("span", "load-text", ag.load + " of " + cap));
    tr.appendChild(load);
    var skills = el("td", "skills");
    if (ag.skills && ag.skills.length) {
      skills.textContent = ag.skills.join(", ");
    } else {
      skills.appendChild(el("span", "muted", "none"));
    }
    tr.appendChild(skills);
    return tr;
  }

  function fill(tbody, items, row, cols, none) {
    var frag = document.createDocumentFragment();
    for (var i = 0; i < items.length; i++) {
      frag.appendChild(row(items[i]));
    }
    if (!items.length) {
      var tr = el("tr");
      var td = el("td", "empty", none);
      td.colSpan = cols;
      tr.appendChild(td);
      frag.appendChild(tr);
    }
    tbody.replaceChildren(frag);
  }

  function show(board) {
    fill(queueRows, board.queues || [], queueRow, 11, "No queues.");
    fill(agentRows, board.agents || [], agentRow, 4, "No agents.");
    var at = new Date(board.at);
    live.textContent = "Live: updated " + at.toLocaleTimeString() + ".";
    root.setAttribute("data-updated", board.at);
  }

  var source = new EventSource(root.getAttribute("data-events"));
  source.addEventListener("board", function (ev) {
    var board;
    try {
      board = JSON.parse(ev.data);
    } catch (e) {
      return;
    }
    show(board);
  });
  source.onerror = function () {
    live.textContent = "Connection to the server lost: reconnecting\u2026 The figures below may be out of date.";
  };
})();
