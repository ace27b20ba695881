// Small conveniences on top of pages that work without JavaScript.
(function () {
  // "Copy" buttons next to secrets.
  document.querySelectorAll("button[data-copy]").forEach(function (b) {
    b.hidden = false;
    b.addEventListener("click", function () {
      navigator.clipboard.writeText(b.getAttribute("data-copy")).then(function () {
        b.textContent = "Copied";
        setTimeout(function () { b.textContent = "Copy"; }, 1500);
      });
    });
  });
  // The trigger form: picking an event type loads its catalog example into the data field.
  var type = document.getElementById("trigger-type");
  var data = document.getElementById("trigger-data");
  if (type && data) {
    type.addEventListener("change", function () {
      var opt = type.options[type.selectedIndex];
      if (opt && opt.dataset.example) data.value = opt.dataset.example;
    });
  }
  // A list with deliveries still under way refreshes itself in place until they settle.
  var live = document.querySelector("[data-refresh][id]");
  if (live && window.fetch && window.DOMParser) {
    var tick = function () {
      fetch(window.location.href, { credentials: "same-origin" })
        .then(function (r) { return r.text(); })
        .then(function (html) {
          var fresh = new DOMParser().parseFromString(html, "text/html").getElementById(live.id);
          if (!fresh) return;
          live.innerHTML = fresh.innerHTML;
          if (fresh.hasAttribute("data-refresh")) setTimeout(tick, 2000);
        })
        .catch(function () {});
    };
    setTimeout(tick, 2000);
  }
})();
