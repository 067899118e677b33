// Captures a signature drawn on the consent canvas as SVG path data ("M x y L x y …").
(function () {
  "use strict";
  var canvas = document.getElementById("signature-pad");
  if (!canvas) return;
  var field = document.getElementById("f-signature");
  var ctx = canvas.getContext("2d");
  ctx.lineWidth = 2.5; ctx.lineCap = "round"; ctx.strokeStyle = "#1b1f24";
  var drawing = false, path = field.value || "";
  function pos(e) {
    var r = canvas.getBoundingClientRect();
    return [Math.round((e.clientX - r.left) * canvas.width / r.width), Math.round((e.clientY - r.top) * canvas.height / r.height)];
  }
  canvas.addEventListener("pointerdown", function (e) {
    drawing = true; canvas.setPointerCapture(e.pointerId);
    var p = pos(e); ctx.beginPath(); ctx.moveTo(p[0], p[1]);
    path += (path ? " " : "") + "M " + p[0] + " " + p[1];
  });
  canvas.addEventListener("pointermove", function (e) {
    if (!drawing) return;
    var p = pos(e); ctx.lineTo(p[0], p[1]); ctx.stroke();
    path += " L " + p[0] + " " + p[1];
  });
  function end() {
    if (!drawing) return;
    drawing = false; field.value = path;
    var sig = document.getElementById("m-signature");
    if (sig) sig.checked = true;
  }
  canvas.addEventListener("pointerup", end);
  canvas.addEventListener("pointerleave", end);
  document.getElementById("signature-clear").addEventListener("click", function () {
    ctx.clearRect(0, 0, canvas.width, canvas.height); path = ""; field.value = "";
  });
})();
