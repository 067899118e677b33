// The patient's questionnaire pages (issue 16): save each answer as it is given. The
// pages work without this script (every button saves); with it, an answer is saved the
// moment it is chosen, so closing the page loses nothing. Same form, same address. The
// forms with their context (analgesic use, return to work or sport, PSFS: class p-home)
// are sent in one go.
"use strict";
document.querySelectorAll("form.p-form:not(.p-home)").forEach(function (form) {
  form.addEventListener("change", function () {
    var data = new FormData(form);
    data.delete("send");
    data.set("save", "1");
    fetch(form.action, {
      method: "POST",
      body: new URLSearchParams(data),
      credentials: "same-origin",
      redirect: "manual",
      headers: { "X-Autosave": "1" },
    }).catch(function () { /* the buttons still save */ });
  });
});
