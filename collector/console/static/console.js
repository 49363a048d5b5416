// The console's only script: live countdowns of the item 35 limits and a
// refresh of the boards. No inline scripts (the collector's CSP forbids
// them); everything it needs is in data- attributes the server rendered.
"use strict";

(function () {
  var body = document.body;
  // The browser's clock may be wrong; the server's time at render fixes it.
  var serverNow = Date.parse(body.getAttribute("data-now") || "");
  var skew = isNaN(serverNow) ? 0 : serverNow - Date.now();
  var WARN = 0.8; // the share of a limit after which a timer turns amber

  function now() { return Date.now() + skew; }

  function mmss(ms) {
    var s = Math.floor(Math.abs(ms) / 1000);
    var h = Math.floor(s / 3600);
    var m = Math.floor((s % 3600) / 60);
    var r = s % 60;
    var t = (m < 10 && h ? "0" : "") + m + ":" + (r < 10 ? "0" : "") + r;
    return h ? h + ":" + t : t;
  }

  function setClass(el, cls) {
    el.classList.remove("t-ok", "t-warn", "t-breach");
    el.classList.add(cls);
  }

  function tick() {
    var els = document.querySelectorAll(".countdown[data-deadline]");
    for (var i = 0; i < els.length; i++) {
      var el = els[i];
      var start = Date.parse(el.getAttribute("data-start"));
      var deadline = Date.parse(el.getAttribute("data-deadline"));
      var limit = Number(el.getAttribute("data-limit-ms"));
      var t = now();
      var left = deadline - t;
      var cls = "t-ok";
      if (left < 0) {
        cls = "t-breach";
        el.textContent = "просрочено на " + mmss(left);
      } else {
        if (t - start >= WARN * limit) { cls = "t-warn"; }
        el.textContent = "осталось " + mmss(left);
      }
      setClass(el, cls);
      var timer = el.closest(".timer");
      if (timer) { setClass(timer, cls); }
    }
  }

  tick();
  setInterval(tick, 1000);

  // Boards reload themselves, unless someone is typing into a form.
  var refresh = Number(body.getAttribute("data-refresh") || "0");
  if (refresh > 0) {
    setInterval(function () {
      var a = document.activeElement;
      if (a && (a.tagName === "INPUT" || a.tagName === "SELECT" || a.tagName === "TEXTAREA")) { return; }
      window.location.reload();
    }, refresh * 1000);
  }
})();
