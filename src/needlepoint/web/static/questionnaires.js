// Questionnaires in the note: a running score as the answers are ticked (the server scores
// what is stored; this only shows the clinician where the form stands), and "More
// questionnaires" shows the one chosen.
(function () {
  "use strict";
  function score(box) {
    var line = box.querySelector(".q-score");
    if (!line) return;
    var d = line.dataset, n = +d.items, values = [];
    box.querySelectorAll("ol.q-items > li").forEach(function (li) {
      var checked = li.querySelector("input[type=radio]:checked");
      var typed = li.querySelector("input:not([type=radio])");
      var v = checked ? checked.value : typed ? typed.value.replace(",", ".") : "";
      if (v !== "" && !isNaN(+v)) values.push(+v);
    });
    var answered = values.length, missing = n - answered;
    var ok = answered >= Math.max(1, +d.minAnswered || 1) &&
      (d.missing === "none_allowed" ? missing === 0 : d.missing === "at_most_one" ? missing <= 1 : true);
    var sum = values.reduce(function (a, b) { return a + b; }, 0);
    if (!ok) {
      line.textContent = "Score so far: not scorable yet (" + answered + " of " + n + " answered).";
      return;
    }
    var s = d.scoring === "sum" ? sum
      : d.scoring === "mean" ? sum / answered
      : d.scoring === "percent_of_answered" ? sum / (+d.max * answered) * 100
      : d.scoring === "dash" ? (sum / answered - 1) * 25
      : values[0];
    line.textContent = "Score: " + (Math.round(s * 10) / 10) + d.unit + " (" + answered + " of " + n + " answered; the server scores the stored answers).";
  }
  document.querySelectorAll(".questionnaire").forEach(function (box) {
    box.addEventListener("change", function () { score(box); });
    box.addEventListener("input", function () { score(box); });
    score(box);
  });
  var pick = document.querySelector(".more-q-pick");
  if (pick) {
    var show = function () {
      document.querySelectorAll("fieldset.questionnaire.extra").forEach(function (f) {
        var answered = f.querySelector("input[type=radio]:checked");
        f.hidden = f.dataset.instrument !== pick.value && !answered;
      });
    };
    pick.addEventListener("change", show);
    show();
  }
})();
