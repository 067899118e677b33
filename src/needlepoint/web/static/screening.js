// The screening wizard: "No to every question in this section" answers a section in one
// tap. Without JavaScript the same button posts the form and the page comes back answered.
(function () {
  "use strict";
  document.querySelectorAll("button.all-no").forEach(function (b) {
    b.addEventListener("click", function (e) {
      e.preventDefault();
      var section = b.closest("section.screen-section");
      section.querySelectorAll("input[type=radio][value=no]").forEach(function (r) { r.checked = true; });
      var next = section.nextElementSibling;
      var target = next && next.querySelector("button.all-no, button[value=review]");
      if (target) target.focus();
    });
  });
})();
