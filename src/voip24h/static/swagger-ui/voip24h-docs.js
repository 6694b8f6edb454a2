// Starts Swagger UI on the document named by #swagger-ui's data-url (no inline script).
window.addEventListener("load", function () {
  var node = document.getElementById("swagger-ui");
  window.ui = SwaggerUIBundle({ url: node.dataset.url, dom_id: "#swagger-ui", deepLinking: true });
});
