// Clientela's small progressive enhancement. Every page works without it; with it,
// selects marked data-autosubmit submit on change, htmx requests carry the CSRF token,
// and forms marked data-confirm ask first. No inline script anywhere (the CSP forbids it).
(function () {
  "use strict";

  function csrfToken() {
    var meta = document.querySelector('meta[name="csrf-token"]');
    return meta ? meta.getAttribute("content") : "";
  }
  window.clientelaCsrfToken = csrfToken;

  document.addEventListener("DOMContentLoaded", function () {
    document.documentElement.classList.add("js");
  });

  document.addEventListener("change", function (event) {
    var target = event.target;
    if (target.matches && target.matches("select[data-autosubmit]") && target.form) {
      target.form.requestSubmit ? target.form.requestSubmit() : target.form.submit();
    }
  });

  document.addEventListener("submit", function (event) {
    var form = event.target;
    var question = form.getAttribute && form.getAttribute("data-confirm");
    if (question && !window.confirm(question)) {
      event.preventDefault();
    }
  });

  document.addEventListener("htmx:configRequest", function (event) {
    event.detail.headers["X-CSRF-Token"] = csrfToken();
  });
})();
