/* safe-report chat: runs the page at / and, bundled into /widget.js, the embeddable widget.
 *
 * Rules this file keeps:
 * - It talks only to the app's own origin (POST /api/chat, DELETE /api/conversation/ID).
 * - Everything from the server is shown as text (textContent, createTextNode); links are
 *   built with createElement and only for http(s) and tel: targets. No innerHTML.
 * - The conversation id is 128 random bits, hex, made at the first message. On the page it
 *   is kept in sessionStorage (this tab only) so the exit on /privacy can still delete it;
 *   what was said is never stored in the browser. The widget keeps the id in memory only.
 * - Quick exit (button, or Shift three times within 5 seconds, as GOV.UK's "Exit this
 *   page"): hide and clear the chat, delete the conversation on the server (keepalive),
 *   clear sessionStorage, then location.replace() so Back does not return here.
 */
(function () {
  "use strict";

  var EXIT_FALLBACK = "https://www.bbc.co.uk/weather";
  var STORAGE_KEY = "safe-report-chat";
  var REQUEST_TIMEOUT_MS = 60000;
  var SHIFT_PRESSES = 3;
  var SHIFT_WINDOW_MS = 5000;
  var OFFLINE_TEXT = "I can't connect right now. If you are in danger, call 999.";
  var OFFLINE_HINT = "Check that you are online, then choose \u201cTry again\u201d. " +
    "Or wait a minute and send your message again.";
  var UNREADABLE_TEXT = "Sorry, I could not send that message. Please try again. " +
    "If you are in danger, call 999.";
  var MONTHS = ["January", "February", "March", "April", "May", "June", "July", "August",
    "September", "October", "November", "December"];
  // Tap-to-call: emergency and short numbers, Relay UK, 116 xxx, and UK numbers starting
  // with 0 (10 or 11 digits). bot/web/app.py has the same rule for article pages.
  var PHONE = /(^|[^\d£$€.,:\/-])(18001 (?:0\d{2,4}(?:[ -]?\d{2,6}){1,3}|\d{3})|0\d{2,4}(?:[ -]?\d{2,6}){1,3}|116 ?\d{3}|18000|999|101|111)(?![\d\/:.,]\d|\d)/g;
  var SOURCES_SHOWN = 3;
  var SOURCE_LINE = /^Source:[\s\S]*?Checked \d{1,2} [A-Za-z]+ \d{4}\.\s*/;

  var reducedMotion = !!(window.matchMedia &&
    window.matchMedia("(prefers-reduced-motion: reduce)").matches);

  // ---- Small helpers --------------------------------------------------------------------

  function el(tag, className, text) {
    var node = document.createElement(tag);
    if (className) node.className = className;
    if (text !== undefined && text !== null) node.textContent = String(text);
    return node;
  }

  function randomId() {
    var bytes = new Uint8Array(16);
    window.crypto.getRandomValues(bytes);
    var hex = "";
    for (var i = 0; i < bytes.length; i++) hex += (bytes[i] < 16 ? "0" : "") + bytes[i].toString(16);
    return hex;
  }

  function safeExitUrl(url) {
    return /^https?:\/\//i.test(url || "") ? url : EXIT_FALLBACK;
  }

  function isHttpUrl(url) {
    return typeof url === "string" && /^https?:\/\/[^\s]+$/i.test(url);
  }

  function longDate(iso) {
    var match = /^(\d{4})-(\d{2})-(\d{2})$/.exec(iso || "");
    if (!match) return "";
    return parseInt(match[3], 10) + " " + MONTHS[parseInt(match[2], 10) - 1] + " " + match[1];
  }

  /* Text into node, with phone numbers as tel: links. */
  function appendText(node, text) {
    var last = 0;
    var match;
    PHONE.lastIndex = 0;
    while ((match = PHONE.exec(text)) !== null) {
      var start = match.index + match[1].length;
      var number = match[2];
      var digits = number.replace(/\D/g, "");
      if (number.charAt(0) === "0" && digits.length !== 10 && digits.length !== 11) continue;
      node.appendChild(document.createTextNode(text.slice(last, start)));
      var link = el("a", "sr-tel", number);
      link.href = "tel:" + digits;
      node.appendChild(link);
      last = start + number.length;
    }
    node.appendChild(document.createTextNode(text.slice(last)));
    return node;
  }

  /* Bot text into node: lines starting "- " become a list, other lines paragraphs. */
  function appendBlocks(node, text) {
    var list = null;
    text.split("\n").forEach(function (line) {
      var item = /^\s*[-\u2022]\s+(.*)$/.exec(line);
      if (item) {
        if (!list) list = node.appendChild(el("ul"));
        list.appendChild(appendText(el("li"), item[1]));
      } else {
        list = null;
        if (line.trim()) node.appendChild(appendText(el("p"), line));
      }
    });
    return node;
  }

  function deleteOnServer(apiBase, sender, keepalive) {
    if (!sender) return Promise.resolve(true);
    try {
      return fetch(apiBase + "/api/conversation/" + encodeURIComponent(sender), {
        method: "DELETE",
        keepalive: !!keepalive,
        credentials: "omit",
        cache: "no-store",
        referrerPolicy: "no-referrer"
      }).then(function (reply) {
        return reply.status === 204;
      }, function () {
        return false;
      });
    } catch (e) {
      return Promise.resolve(false);
    }
  }

  // ---- Where the conversation id lives --------------------------------------------------

  var tabStorage = {
    get: function () {
      try {
        var state = JSON.parse(window.sessionStorage.getItem(STORAGE_KEY) || "null");
        return state && /^[0-9a-f]{32}$/.test(state.sender) ? state : null;
      } catch (e) {
        return null;
      }
    },
    set: function (state) {
      try { window.sessionStorage.setItem(STORAGE_KEY, JSON.stringify(state)); } catch (e) { /* private mode */ }
    },
    clear: function () {
      try { window.sessionStorage.clear(); } catch (e) { /* nothing stored */ }
    }
  };

  function memoryStorage() {
    var state = null;
    return {
      get: function () { return state; },
      set: function (value) { state = value; },
      clear: function () { state = null; }
    };
  }

  // ---- The chat ---------------------------------------------------------------------------

  /* container: the [data-sr-chat] element. options: apiBase ("" = this origin), storage,
     scrollBox (the widget's scrolling panel body; the page scrolls the window). */
  function mountChat(container, options) {
    var find = function (selector) { return container.querySelector(selector); };
    var log = find("[data-sr-log]");
    var form = find("[data-sr-form]");
    var input = find("[data-sr-input]");
    var typing = find("[data-sr-typing]");
    var deleteButton = find("[data-sr-delete]");
    var deleteStatus = find("[data-sr-delete-status]");
    var retentionHours = container.getAttribute("data-retention-hours") || "24";
    var apiBase = options.apiBase || "";
    var storage = options.storage;
    var scrollBox = options.scrollBox || null;
    var stored = storage.get();
    var sender = stored ? stored.sender : null;
    var generation = 0;
    var queue = Promise.resolve();

    if (sender) {
      addNotice([
        "You are continuing the conversation you started in this tab. Earlier messages are " +
        "not shown again, to keep them private.",
        "To delete it now, choose \u201cDelete my conversation\u201d."
      ], "sr-msg--bot");
    }

    // Sending
    function ensureSender() {
      if (!sender) {
        sender = randomId();
        storage.set({ sender: sender });
      }
      return sender;
    }

    function send(message, shown) {
      setDeleteStatus("");
      removeReplies();
      var node = addMine(shown);
      var id = ensureSender();
      reveal(node, true);
      deliver(message, id, generation);
    }

    function deliver(message, id, gen) {
      queue = queue.then(function () { return post(message, id, gen); });
    }

    function post(message, id, gen) {
      if (gen !== generation) return null;
      setTyping(true);
      var controller = window.AbortController ? new AbortController() : null;
      var timer = controller ? setTimeout(function () { controller.abort(); }, REQUEST_TIMEOUT_MS) : null;
      return fetch(apiBase + "/api/chat", {
        method: "POST",
        headers: { "Content-Type": "application/json" },
        body: JSON.stringify({ sender: id, message: message }),
        credentials: "omit",
        cache: "no-store",
        referrerPolicy: "no-referrer",
        signal: controller ? controller.signal : undefined
      }).then(function (reply) {
        return reply.json().then(function (data) {
          return { reply: reply, data: data };
        }, function () {
          return { reply: reply, data: null };
        });
      }, function () {
        return { reply: null, data: null };
      }).then(function (result) {
        if (timer) clearTimeout(timer);
        if (gen !== generation) return;
        setTyping(false);
        var reply = result.reply;
        var data = result.data;
        var messages = data && Array.isArray(data.messages) ? data.messages : null;
        if (reply && reply.ok && messages) {
          renderBot(messages);
        } else if (messages && messages.length) {
          renderBot(messages); // the bot's own calm words about a problem on its side
        } else if (reply && reply.status >= 400 && reply.status < 500 &&
                   reply.status !== 408 && reply.status !== 429) {
          reveal(addNotice([UNREADABLE_TEXT]));
        } else {
          renderOffline(message, id, gen);
        }
      });
    }

    // Rendering
    function addMine(text) {
      var node = el("div", "sr-msg sr-msg--me");
      node.appendChild(el("span", "sr-visually-hidden", "You said: "));
      node.appendChild(el("p", null, text));
      log.appendChild(node);
      return node;
    }

    function addNotice(lines, extraClass) {
      var node = el("div", "sr-msg " + (extraClass || "sr-msg--notice"));
      lines.forEach(function (line) { node.appendChild(appendText(el("p"), line)); });
      log.appendChild(node);
      return node;
    }

    function sourcesBlock(custom) {
      var box = el("div", "sr-sources");
      var sources = (custom.sources || []).filter(function (s) { return s && s.title; });
      function sourceLink(source) {
        if (!isHttpUrl(source.url)) return document.createTextNode(source.title);
        var link = el("a", "sr-source", source.title);
        link.href = source.url;
        link.target = "_blank";
        link.rel = "noopener noreferrer";
        link.referrerPolicy = "no-referrer";
        link.appendChild(el("span", "sr-visually-hidden", " (opens in a new tab)"));
        return link;
      }
      function sourceList(items) {
        var list = el("ul");
        items.forEach(function (source) {
          var item = el("li");
          item.appendChild(sourceLink(source));
          list.appendChild(item);
        });
        return list;
      }
      if (sources.length === 1) {
        var line = el("p", null, "Source: ");
        line.appendChild(sourceLink(sources[0]));
        box.appendChild(line);
      } else if (sources.length > 1) {
        box.appendChild(el("p", null, "Sources:"));
        box.appendChild(sourceList(sources.slice(0, SOURCES_SHOWN)));
        if (sources.length > SOURCES_SHOWN) {
          var more = el("details", "sr-more-sources");
          var rest = sources.slice(SOURCES_SHOWN);
          more.appendChild(el("summary", null, rest.length + " more source" + (rest.length === 1 ? "" : "s")));
          more.appendChild(sourceList(rest));
          box.appendChild(more);
        }
      }
      var checked = longDate(custom.last_reviewed);
      if (checked) box.appendChild(el("p", "sr-checked-line", "Checked " + checked + "."));
      return box;
    }

    /* The answer's "Source: … Checked …" line and its article payload come as two
       messages; show them as one: linked sources, the date, then the rest of the line. */
    function mergeSources(messages) {
      var items = messages.map(function (m) {
        return { text: typeof m.text === "string" ? m.text : "", buttons: m.buttons, custom: m.custom };
      });
      items.forEach(function (item, index) {
        if (!item.custom || item.text) return;
        for (var j = index - 1; j >= 0; j--) {
          var target = items[j];
          if (!target.custom && SOURCE_LINE.test(target.text)) {
            target.custom = item.custom;
            target.text = target.text.replace(SOURCE_LINE, "");
            item.custom = null;
            break;
          }
        }
      });
      return items;
    }

    function addBot(item) {
      var node = el("div", "sr-msg sr-msg--bot");
      node.appendChild(el("span", "sr-visually-hidden", "The chatbot said: "));
      if (item.custom && item.custom.sources) node.appendChild(sourcesBlock(item.custom));
      if (item.text) appendBlocks(node, item.text);
      log.appendChild(node);
      return node;
    }

    function addReplies(buttons) {
      var group = el("div", "sr-replies");
      group.setAttribute("role", "group");
      group.setAttribute("aria-label", "Choose a reply");
      buttons.forEach(function (button) {
        if (!button || typeof button.title !== "string" || typeof button.payload !== "string") return;
        var node = el("button", "sr-reply", button.title);
        node.type = "button";
        node.setAttribute("data-payload", button.payload);
        group.appendChild(node);
      });
      log.appendChild(group);
    }

    function removeReplies() {
      var groups = log.querySelectorAll(".sr-replies");
      for (var i = 0; i < groups.length; i++) groups[i].parentNode.removeChild(groups[i]);
    }

    function renderBot(messages) {
      var first = null;
      mergeSources(messages).forEach(function (item) {
        if (item.text || (item.custom && item.custom.sources)) {
          var node = addBot(item);
          first = first || node;
        }
        if (Array.isArray(item.buttons) && item.buttons.length) addReplies(item.buttons);
      });
      reveal(first);
    }

    function renderOffline(message, id, gen) {
      var node = addNotice([OFFLINE_TEXT, OFFLINE_HINT]);
      var retry = el("button", "sr-retry", "Try again");
      retry.type = "button";
      retry.addEventListener("click", function () {
        if (retry.parentNode) retry.parentNode.removeChild(retry);
        input.focus();
        deliver(message, id, gen);
      });
      node.appendChild(retry);
      reveal(node);
    }

    function setTyping(on) {
      typing.textContent = "";
      if (!on) return;
      var dots = el("span", "sr-typing-dots");
      dots.setAttribute("aria-hidden", "true");
      dots.appendChild(el("span"));
      dots.appendChild(el("span"));
      dots.appendChild(el("span"));
      typing.appendChild(dots);
      typing.appendChild(el("span", null, "Getting an answer\u2026"));
    }

    function setDeleteStatus(text) {
      deleteStatus.textContent = text;
    }

    /* Show the newest messages: the start of the new ones, and the message box if it fits. */
    function reveal(first, justSent) {
      if (!first) return;
      var behavior = reducedMotion ? "auto" : "smooth";
      if (scrollBox) {
        var box = scrollBox.getBoundingClientRect();
        scrollBox.scrollTop = scrollBox.scrollHeight;
        var top = first.getBoundingClientRect().top;
        if (top < box.top) scrollBox.scrollTop -= (box.top - top) + 8;
        return;
      }
      var header = document.querySelector(".sr-header");
      var limit = header ? header.getBoundingClientRect().bottom : 0;
      var formBottom = form.getBoundingClientRect().bottom;
      var firstTop = first.getBoundingClientRect().top;
      if (justSent || formBottom - firstTop <= window.innerHeight - limit) {
        form.scrollIntoView({ block: "end", behavior: behavior });
      } else {
        first.scrollIntoView({ block: "start", behavior: behavior });
      }
    }

    // Forgetting
    function wipe() {
      generation += 1;
      queue = Promise.resolve();
      log.textContent = "";
      setTyping(false);
      input.value = "";
      var old = sender;
      sender = null;
      storage.clear();
      return old;
    }

    function deleteConversation() {
      var old = wipe();
      if (!old) {
        setDeleteStatus("There was nothing to delete: nothing has been kept.");
        return;
      }
      setDeleteStatus("Deleting your conversation\u2026");
      deleteOnServer(apiBase, old, false).then(function (done) {
        if (done) {
          setDeleteStatus("Your conversation has been deleted. You can start again at any time.");
        } else {
          if (!sender) {
            sender = old; // so pressing again, or the exit, tries again
            storage.set({ sender: old });
          }
          setDeleteStatus("I couldn't reach the server, so your conversation is not deleted yet. " +
            "Please try again in a minute. It is deleted anyway after " + retentionHours +
            " hours with no activity.");
        }
      });
    }

    // Wiring
    form.addEventListener("submit", function (event) {
      event.preventDefault();
      var text = input.value.trim();
      input.focus();
      if (!text) return;
      input.value = "";
      send(text, text);
    });
    input.addEventListener("keydown", function (event) {
      if (event.key === "Enter" && !event.shiftKey && !event.isComposing) {
        event.preventDefault();
        if (form.requestSubmit) form.requestSubmit();
        else form.dispatchEvent(new Event("submit", { cancelable: true }));
      }
    });
    container.addEventListener("click", function (event) {
      var button = event.target.closest ? event.target.closest("button[data-payload]") : null;
      if (!button || !container.contains(button)) return;
      event.preventDefault();
      var payload = button.getAttribute("data-payload");
      var title = button.textContent;
      send(payload, title);
      input.focus();
    });
    deleteButton.addEventListener("click", deleteConversation);

    return {
      sender: function () { return sender; },
      wipe: wipe,
      focus: function () { input.focus(); }
    };
  }

  // ---- Quick exit -------------------------------------------------------------------------

  /* options: scope (where the exit links are), keyTarget (where Shift is counted), isActive,
     exitUrl, apiBase, storage, chat (or null), overlay, status, exitingRoot. */
  function mountExit(options) {
    var exiting = false;
    var exitUrl = safeExitUrl(options.exitUrl);
    var presses = 0;
    var timer = null;
    var lastKeyWasModified = false;

    function exit(event) {
      if (event) event.preventDefault();
      if (exiting) return;
      exiting = true;
      if (options.overlay) options.overlay.hidden = false;
      if (options.exitingRoot) options.exitingRoot.classList.add("sr-exiting");
      var stored = options.storage.get();
      var sender = (options.chat && options.chat.wipe()) || (stored && stored.sender);
      options.storage.clear();
      deleteOnServer(options.apiBase || "", sender, true);
      window.location.replace(exitUrl);
    }

    function showProgress(count) {
      var groups = options.scope.querySelectorAll("[data-sr-exit-dots]");
      for (var g = 0; g < groups.length; g++) {
        groups[g].hidden = count === 0;
        var dots = groups[g].querySelectorAll("span");
        for (var i = 0; i < dots.length; i++) dots[i].className = i < count ? "sr-on" : "";
      }
    }

    function say(text) {
      if (options.status) options.status.textContent = text;
    }

    function reset(expired) {
      if (timer) clearTimeout(timer);
      timer = null;
      if (presses > 0 && expired) say("Exit this page expired.");
      presses = 0;
      showProgress(0);
    }

    options.keyTarget.addEventListener("keyup", function (event) {
      if (!options.isActive()) return;
      if ((event.key === "Shift" || event.keyCode === 16) && !lastKeyWasModified) {
        presses += 1;
        showProgress(presses);
        if (presses >= SHIFT_PRESSES) {
          reset(false);
          exit();
          return;
        }
        var left = SHIFT_PRESSES - presses;
        say("Shift, press " + left + " more time" + (left === 1 ? "" : "s") + " to exit.");
        if (timer === null) timer = setTimeout(function () { reset(true); }, SHIFT_WINDOW_MS);
      } else if (timer !== null) {
        reset(false);
      }
      lastKeyWasModified = event.shiftKey;
    }, true);

    var links = options.scope.querySelectorAll("[data-sr-exit]");
    for (var i = 0; i < links.length; i++) links[i].addEventListener("click", exit);

    // Back to a page restored from the back/forward cache after an exit: show nothing.
    window.addEventListener("pageshow", function (event) {
      if (event.persisted && exiting) window.location.replace(exitUrl);
    });

    return { exit: exit };
  }

  // ---- Start ------------------------------------------------------------------------------

  var api = { mountChat: mountChat, mountExit: mountExit, memoryStorage: memoryStorage };

  function startPage() {
    var body = document.body;
    var container = document.querySelector("[data-sr-chat]");
    var chat = container ? mountChat(container, { apiBase: "", storage: tabStorage }) : null;
    mountExit({
      scope: document,
      keyTarget: document,
      isActive: function () { return true; },
      exitUrl: body.getAttribute("data-exit-url"),
      apiBase: "",
      storage: tabStorage,
      chat: chat,
      overlay: document.querySelector("[data-sr-exit-overlay]"),
      status: document.querySelector("[data-sr-exit-status]"),
      exitingRoot: body
    });
  }

  /* global SR_CONFIG, srWidget: defined by the /widget.js bundle around this file. */
  if (typeof SR_CONFIG !== "undefined" && typeof srWidget === "function") {
    srWidget(api, SR_CONFIG);
  } else if (document.readyState === "loading") {
    document.addEventListener("DOMContentLoaded", startPage);
  } else {
    startPage();
  }
})();
