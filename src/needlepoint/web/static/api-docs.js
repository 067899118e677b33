// Starts Swagger UI on /api/docs (a file, not an inline script: the page keeps the
// same Content-Security-Policy as every other page). The UI's files come from the
// pinned fastapi-offline package, served under /static/api-docs/.
"use strict";
window.addEventListener("DOMContentLoaded", function () {
  var root = document.getElementById("swagger-ui");
  window.ui = window.SwaggerUIBundle({
    url: root.getAttribute("data-openapi"),
    domNode: root,
    deepLinking: true,
    presets: [window.SwaggerUIBundle.presets.apis],
    layout: "BaseLayout",
  });
});
