// The customer portal: a one-time login or invitation link carries its token in the URL's
// fragment (#token=...), which never reaches the server by itself. Put it in the page's
// form; the login link's form is then sent at once. No inline script (the CSP forbids it).
(function () {
  "use strict";
  document.addEventListener("DOMContentLoaded", function () {
    var match = /(?:^#|&)token=([^&]+)/.exec(window.location.hash || "");
    if (!match) { return; }
    var token = decodeURIComponent(match[1]);
    var form = document.querySelector("form[data-token-form]");
    if (!form) { return; }
    var field = form.querySelector("input[name=token]");
    if (field) { field.value = token; }
    history.replaceState(null, "", window.location.pathname + window.location.search);
    if (form.hasAttribute("data-autosubmit-token")) {
      form.requestSubmit ? form.requestSubmit() : form.submit();
    }
  });
})();
