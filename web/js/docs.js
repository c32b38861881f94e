// Swagger UI over the service's own OpenAPI document (/api/v1/docs). A classic script, not a
// module: the vendored bundle defines SwaggerUIBundle as a global. "Try it out" sends the key
// entered under Authorize, and X-Tenant-Id as each operation's header parameter.
window.addEventListener("DOMContentLoaded", () => {
  // eslint-disable-next-line no-undef
  window.ui = SwaggerUIBundle({
    url: "/api/v1/openapi.json",
    dom_id: "#swagger-ui",
    deepLinking: true,
    displayRequestDuration: true,
    tryItOutEnabled: false,
  });
});
