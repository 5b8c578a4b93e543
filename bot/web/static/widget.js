/* safe-report widget shell. Not loaded on its own: GET /widget.js serves it bundled with
 * chat.js inside one function, with SR_SCRIPT (this <script> element) and SR_CONFIG
 * ({exitUrl, panelHtml}) from the server. See docs/WIDGET.md.
 *
 * It adds a floating "Get help safely" button to the host page. The button opens a panel
 * with the same chat as the page at /, inside a shadow root (so the host page's styles
 * and ours do not mix). The chat talks to the API at this script's own origin; the
 * conversation id lives in memory only (nothing in the host site's storage). While the
 * panel is open, Shift three times within 5 seconds is the quick exit.
 */
/* exported srWidget */
function srWidget(chat, config) {
  "use strict";

  var origin;
  try {
    origin = new URL(SR_SCRIPT.src, window.location.href).origin;
  } catch (e) {
    return;
  }

  function appLink(link) {
    link.href = origin + link.getAttribute("href");
    link.target = "_blank";
    link.rel = "noopener noreferrer";
    var note = document.createElement("span");
    note.className = "sr-visually-hidden";
    note.textContent = " (opens in a new tab)";
    link.appendChild(note);
  }

  function start() {
    if (document.querySelector("[data-safe-report-widget]")) return; // embedded twice
    var host = document.createElement("div");
    host.setAttribute("data-safe-report-widget", "");
    var shadow = host.attachShadow({ mode: "open" });

    var stylesheet = document.createElement("link");
    stylesheet.rel = "stylesheet";
    stylesheet.href = origin + "/static/chat.css";

    var wrapper = document.createElement("div");
    wrapper.className = "sr-widget";
    wrapper.hidden = true; // until our stylesheet has loaded
    stylesheet.addEventListener("load", function () { wrapper.hidden = false; });
    stylesheet.addEventListener("error", function () {
      if (window.console) {
        window.console.warn("safe-report widget: could not load " + stylesheet.href +
          " (is it allowed by this site's Content-Security-Policy? See docs/WIDGET.md)");
      }
    });

    var launcher = document.createElement("button");
    launcher.type = "button";
    launcher.className = "sr-launcher";
    launcher.textContent = "Get help safely";
    launcher.setAttribute("aria-expanded", "false");
    launcher.setAttribute("aria-controls", "sr-panel");

    var panel = document.createElement("div");
    panel.id = "sr-panel";
    panel.className = "sr-panel";
    panel.setAttribute("role", "dialog");
    panel.setAttribute("aria-labelledby", "sr-panel-title");
    panel.hidden = true;

    // The panel's markup is the server's own template (escaped there); parsing it creates
    // no scripts and no requests.
    var parsed = new DOMParser().parseFromString(config.panelHtml, "text/html");
    while (parsed.body.firstChild) panel.appendChild(document.adoptNode(parsed.body.firstChild));
    var links = panel.querySelectorAll("a[data-sr-app-link]");
    for (var i = 0; i < links.length; i++) appLink(links[i]);

    wrapper.appendChild(launcher);
    wrapper.appendChild(panel);
    shadow.appendChild(stylesheet);
    shadow.appendChild(wrapper);
    document.body.appendChild(host);

    var storage = chat.memoryStorage();
    var container = panel.querySelector("[data-sr-chat]");
    var conversation = chat.mountChat(container, {
      apiBase: origin,
      storage: storage,
      scrollBox: panel.querySelector("[data-sr-scroll]")
    });
    chat.mountExit({
      scope: panel,
      keyTarget: document,
      isActive: function () { return !panel.hidden; },
      exitUrl: config.exitUrl,
      apiBase: origin,
      storage: storage,
      chat: conversation,
      overlay: panel.querySelector("[data-sr-exit-overlay]"),
      status: panel.querySelector("[data-sr-exit-status]"),
      exitingRoot: null
    });

    function open() {
      panel.hidden = false;
      launcher.hidden = true;
      launcher.setAttribute("aria-expanded", "true");
      var title = panel.querySelector("#sr-panel-title");
      if (title) title.focus();
    }

    function close() {
      panel.hidden = true;
      launcher.hidden = false;
      launcher.setAttribute("aria-expanded", "false");
      launcher.focus();
    }

    launcher.addEventListener("click", open);
    var closeButton = panel.querySelector("[data-sr-close]");
    if (closeButton) closeButton.addEventListener("click", close);
    panel.addEventListener("keydown", function (event) {
      if (event.key === "Escape") {
        event.preventDefault();
        close();
      }
    });
  }

  if (document.readyState === "loading") document.addEventListener("DOMContentLoaded", start);
  else start();
}
