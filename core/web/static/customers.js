// The customer pages' enhancement: the "log an interaction" form shows the duration field
// only for channels that record one (without script it is always shown).
(function () {
  "use strict";

  function update(form) {
    var channels = (form.getAttribute("data-duration-channels") || "").split(" ");
    var select = form.querySelector("[name=channel]");
    var field = form.querySelector(".duration-field");
    if (!select || !field) { return; }
    field.classList.toggle("is-hidden", channels.indexOf(select.value) < 0);
  }

  document.addEventListener("DOMContentLoaded", function () {
    document.querySelectorAll("form[data-duration-channels]").forEach(update);
  });
  document.addEventListener("change", function (event) {
    var form = event.target.form;
    if (form && form.hasAttribute("data-duration-channels") && event.target.name === "channel") {
      update(form);
    }
  });
})();
