// The agent's workspace. The work item list and the item page are complete without this
// script; with it they follow /workitems/events (server-sent events): the list reloads its
// rows when work items change, the item page shows who else has it open or is writing and
// says when a new message arrived. It also adds keyboard shortcuts ("?" lists them). No
// framework; text goes in as text, never HTML.
"use strict";
(function () {
  var results = document.getElementById("workitem-results");
  var presence = document.getElementById("presence");
  if (!results && !presence) {
    return;
  }
  var csrfInput = document.querySelector("input[name=csrf]");
  var csrf = csrfInput ? csrfInput.value : "";

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

  // ---- The list: reload the rows when work items change. ----
  var current = -1; // the row chosen with j/k
  var currentHref = "";

  function rows() {
    return results ? results.querySelectorAll("table.workitems tbody tr") : [];
  }

  function choose(i) {
    var list = rows();
    if (!list.length) {
      return;
    }
    i = Math.max(0, Math.min(list.length - 1, i));
    for (var k = 0; k < list.length; k++) {
      list[k].classList.toggle("kbd-current", k === i);
    }
    current = i;
    var link = list[i].querySelector("a");
    if (link) {
      currentHref = link.getAttribute("href");
      link.focus();
    }
  }

  var refreshing = false;
  var again = false;
  function refreshList() {
    if (refreshing) {
      again = true;
      return;
    }
    refreshing = true;
    fetch(window.location.href, { credentials: "same-origin", cache: "no-store" })
      .then(function (resp) {
        if (!resp.ok) {
          throw new Error("HTTP " + resp.status);
        }
        return resp.text();
      })
      .then(function (html) {
        var doc = new DOMParser().parseFromString(html, "text/html");
        var fresh = doc.getElementById("workitem-results");
        if (fresh && fresh.innerHTML !== results.innerHTML) {
          results.innerHTML = fresh.innerHTML; // our own page, rendered by the server
          if (currentHref) {
            var list = rows();
            for (var k = 0; k < list.length; k++) {
              var a = list[k].querySelector("a");
              if (a && a.getAttribute("href") === currentHref) {
                list[k].classList.add("kbd-current");
                current = k;
              }
            }
          }
        }
      })
      .catch(function () {
        // The next event tries again.
      })
      .then(function () {
        refreshing = false;
        if (again) {
          again = false;
          refreshList();
        }
      });
  }

  // ---- The item page: presence and the new-message banner. ----
  var itemID = presence ? presence.getAttribute("data-item") : "";
  var latest = presence ? Number(presence.getAttribute("data-latest")) : 0;

  function showPresence(list) {
    while (presence.firstChild) {
      presence.removeChild(presence.firstChild);
    }
    (list || []).forEach(function (p, i) {
      if (i) {
        presence.appendChild(document.createTextNode(" \u00b7 "));
      }
      presence.appendChild(el("span", "present", p.name + (p.typing ? " is writing a reply" : " is viewing")));
    });
    presence.hidden = !list || list.length === 0;
  }

  function showNewMessage() {
    if (document.getElementById("new-message")) {
      return;
    }
    var banner = el("p", "notice new-message", "New message arrived \u2014 ");
    banner.id = "new-message";
    banner.setAttribute("role", "status");
    var a = el("a", "", "reload");
    a.href = window.location.pathname;
    banner.appendChild(a);
    banner.appendChild(document.createTextNode(" to read it before you reply."));
    presence.parentNode.insertBefore(banner, presence);
  }

  // The item's state as the page was drawn; a colleague's change (done, transferred,
  // reassigned) shows at once in the state badge, with a banner to reload the buttons.
  var stateBadge = document.getElementById("state");
  var drawnState = stateBadge ? stateBadge.textContent : "";
  function showState(state) {
    if (!stateBadge || !state || state === stateBadge.textContent) {
      return;
    }
    stateBadge.textContent = state;
    if (state === drawnState) {
      var old = document.getElementById("state-changed");
      if (old) {
        old.parentNode.removeChild(old);
      }
      return;
    }
    if (document.getElementById("state-changed")) {
      return;
    }
    var banner = el("p", "notice state-changed", "This item changed meanwhile \u2014 ");
    banner.id = "state-changed";
    banner.setAttribute("role", "status");
    var a = el("a", "", "reload");
    a.href = window.location.pathname;
    banner.appendChild(a);
    banner.appendChild(document.createTextNode(" to see what you can do with it now."));
    presence.parentNode.insertBefore(banner, presence);
  }

  // Tell colleagues that this agent is writing: at most one note every 10 s.
  var lastTyped = 0;
  var reply = document.getElementById("text");
  if (presence && reply && csrf) {
    reply.addEventListener("input", function () {
      var now = Date.now();
      if (now - lastTyped < 10000) {
        return;
      }
      lastTyped = now;
      var body = new URLSearchParams();
      body.set("csrf", csrf);
      body.set("typing", "1");
      fetch("/workitems/" + encodeURIComponent(itemID) + "/presence", {
        method: "POST", credentials: "same-origin", body: body
      }).catch(function () {});
    });
  }

  // Autosave: the reply being written is kept on the server as the agent's draft three
  // seconds after each change (the reply box's Save draft, without its page), so a reload
  // or another device loses nothing. Files are not part of a draft.
  var replyForm = reply ? reply.form : null;
  if (presence && replyForm && csrf) {
    var saveTimer = 0;
    var status = el("p", "muted draft-autosave");
    status.id = "draft-autosave";
    status.setAttribute("role", "status");
    reply.parentNode.insertBefore(status, reply.nextSibling);
    var field = function (name) {
      var f = replyForm.elements[name];
      return f ? f : null;
    };
    var save = function () {
      var body = new URLSearchParams();
      body.set("csrf", csrf);
      body.set("op", "draft");
      body.set("autosave", "1");
      ["text", "cc", "bcc", "from"].forEach(function (name) {
        var f = field(name);
        if (f) {
          body.set(name, f.value);
        }
      });
      var all = field("reply_all");
      if (all && all.checked) {
        body.set("reply_all", "1");
      }
      fetch("/workitems/" + encodeURIComponent(itemID) + "/compose", {
        method: "POST", credentials: "same-origin", body: body
      }).then(function (r) {
        status.textContent = r.ok ? "Draft saved " + new Date().toLocaleTimeString() : "The draft could not be saved (" + r.status + ")";
      }).catch(function () {
        status.textContent = "The draft could not be saved: the server did not answer";
      });
    };
    var changed = function () {
      if (saveTimer) {
        clearTimeout(saveTimer);
      }
      saveTimer = setTimeout(save, 3000);
    };
    ["text", "cc", "bcc", "from", "reply_all"].forEach(function (name) {
      var f = field(name);
      if (f) {
        f.addEventListener(f.type === "checkbox" || f.tagName === "SELECT" ? "change" : "input", changed);
      }
    });
    replyForm.addEventListener("submit", function () {
      if (saveTimer) {
        clearTimeout(saveTimer);
      }
    });
  }

  // ---- The stream. ----
  if (window.EventSource && window.JSON) {
    var src = "/workitems/events" + (presence ? "?item=" + encodeURIComponent(itemID) : "");
    var events = new EventSource(src);
    if (results) {
      events.addEventListener("list", refreshList);
    }
    if (presence) {
      events.addEventListener("item", function (e) {
        var ev;
        try {
          ev = JSON.parse(e.data);
        } catch (err) {
          return;
        }
        showPresence(ev.presence);
        if (ev.latest_message_id > latest) {
          showNewMessage();
        }
        showState(ev.state);
      });
    }
    document.documentElement.setAttribute("data-live", "1");
  }

  // ---- Keyboard shortcuts. ----
  var shortcuts = results ? [
    ["j", "next work item in the list"],
    ["k", "previous work item in the list"],
    ["Enter", "open the chosen work item"],
    ["n", "get next: the next work item for you"],
    ["?", "show or hide this list"]
  ] : [
    ["r", "write the reply"],
    ["d", "mark done"],
    ["n", "get next: the next work item for you"],
    ["?", "show or hide this list"]
  ];
  var help = null;

  function toggleHelp() {
    if (!help) {
      help = el("dialog", "shortcuts");
      help.id = "shortcuts";
      help.appendChild(el("h2", "", "Keyboard shortcuts"));
      var dl = el("dl");
      shortcuts.forEach(function (s) {
        var dt = el("dt");
        dt.appendChild(el("kbd", "", s[0]));
        dl.appendChild(dt);
        dl.appendChild(el("dd", "", s[1]));
      });
      help.appendChild(dl);
      var close = el("button", "", "Close");
      close.type = "button";
      close.addEventListener("click", function () {
        help.close();
      });
      help.appendChild(close);
      document.body.appendChild(help);
    }
    if (help.open) {
      help.close();
    } else {
      help.showModal();
    }
  }

  function post(action) {
    if (!csrf) {
      return;
    }
    var f = el("form");
    f.method = "post";
    f.action = action;
    var i = el("input");
    i.type = "hidden";
    i.name = "csrf";
    i.value = csrf;
    f.appendChild(i);
    document.body.appendChild(f);
    f.submit();
  }

  function say(text) {
    var n = document.getElementById("shortcut-note");
    if (!n) {
      n = el("p", "notice");
      n.id = "shortcut-note";
      n.setAttribute("role", "status");
      var main = document.querySelector("main");
      main.insertBefore(n, main.firstChild);
    }
    n.textContent = text;
  }

  function typing(t) {
    if (!t || !t.tagName) {
      return false;
    }
    var tag = t.tagName.toLowerCase();
    return tag === "input" || tag === "textarea" || tag === "select" || t.isContentEditable;
  }

  var focusOnKeyUp = null;
  document.addEventListener("keyup", function () {
    if (focusOnKeyUp) {
      focusOnKeyUp.focus();
      focusOnKeyUp = null;
    }
  });

  document.addEventListener("keydown", function (e) {
    if (e.defaultPrevented || e.ctrlKey || e.metaKey || e.altKey || typing(e.target)) {
      return;
    }
    if (help && help.open && e.key !== "?") {
      return;
    }
    var handled = true;
    switch (e.key) {
    case "?":
      toggleHelp();
      break;
    case "j":
      if (results) {
        choose(current + 1);
      } else {
        handled = false;
      }
      break;
    case "k":
      if (results) {
        choose(current < 0 ? 0 : current - 1);
      } else {
        handled = false;
      }
      break;
    case "n":
      post("/my/next");
      break;
    case "r":
      // The box takes the focus when the key is released, so that the key's own
      // character is not typed into it.
      if (presence && reply) {
        focusOnKeyUp = reply;
      } else {
        handled = false;
      }
      break;
    case "d":
      if (!presence) {
        handled = false;
        break;
      }
      var done = document.querySelector("form.actions button.action-close");
      if (done) {
        done.click();
      } else {
        say("This item cannot be marked done from here now.");
      }
      break;
    default:
      handled = false;
    }
    if (handled) {
      e.preventDefault();
    }
  });
})();
