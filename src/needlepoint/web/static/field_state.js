// A refused sign (issue 15): mark each field the summary names as invalid (aria-invalid,
// styled by needlepoint.css), point it at the summary, highlight its site, and move focus
// to the summary so a screen reader announces it.
(function () {
  "use strict";
  var summary = document.getElementById("sign-problems");
  if (!summary) { return; }
  var items = summary.querySelectorAll("[data-invalid-field]");
  for (var i = 0; i < items.length; i++) {
    var name = items[i].getAttribute("data-invalid-field");
    var fields = document.getElementsByName(name);
    for (var j = 0; j < fields.length; j++) {
      var f = fields[j];
      if (f.type === "hidden") { continue; }
      f.setAttribute("aria-invalid", "true");
      var ids = (f.getAttribute("aria-describedby") || "").split(" ").filter(Boolean);
      if (ids.indexOf("sign-problems") < 0) { ids.push("sign-problems"); }
      f.setAttribute("aria-describedby", ids.join(" "));
      var site = f.closest ? f.closest("li.site") : null;
      if (site) { site.classList.add("has-problem"); }
    }
  }
  summary.focus();
})();
