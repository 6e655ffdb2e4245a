// The import page: send the file as the request body (as the API takes it) with XHR, so the
// <progress> bar follows the bytes the server has taken in. The server imports the rows
// while they arrive, so when the upload is at 100% most of the work is done; the bar then
// turns indeterminate until the report comes back. Without script the form posts normally.
(function () {
  "use strict";

  document.addEventListener("submit", function (event) {
    var form = event.target;
    if (form.id !== "import-form" || !window.XMLHttpRequest || !window.FormData) { return; }
    var input = form.querySelector("input[type=file]");
    var file = input && input.files && input.files[0];
    if (!file) { return; }  // the browser's own "required" check, or the server's message
    event.preventDefault();
    var params = new URLSearchParams();
    params.set("filename", file.name);
    params.set("match", form.querySelector("[name=match]").value);
    ["dry_run", "all_or_nothing"].forEach(function (name) {
      if (form.querySelector("[name=" + name + "]").checked) { params.set(name, "1"); }
    });
    var box = document.getElementById("import-progress");
    var bar = document.getElementById("import-progress-bar");
    var label = document.getElementById("import-progress-label");
    var report = document.getElementById("import-report");
    var button = form.querySelector("button[type=submit]");
    box.hidden = false;
    bar.value = 0;
    label.textContent = form.getAttribute("data-uploading");
    button.disabled = true;
    report.innerHTML = "";

    var xhr = new XMLHttpRequest();
    xhr.open("POST", form.action + "?" + params.toString());
    xhr.setRequestHeader("X-CSRF-Token", window.clientelaCsrfToken());
    xhr.setRequestHeader("X-Clientela-Fragment", "report");
    xhr.setRequestHeader("Content-Type", "text/csv");
    xhr.upload.addEventListener("progress", function (e) {
      if (e.lengthComputable) { bar.value = Math.round(100 * e.loaded / e.total); }
    });
    xhr.upload.addEventListener("load", function () {
      bar.removeAttribute("value");  // indeterminate while the last batch is written
      label.textContent = form.getAttribute("data-finishing");
    });
    xhr.addEventListener("loadend", function () {
      button.disabled = false;
      if (xhr.status === 200 || xhr.status === 422) {
        bar.value = 100;
        box.hidden = true;
        report.innerHTML = xhr.responseText;  // our own server-rendered fragment
        var heading = report.querySelector("h2");
        if (heading) { heading.setAttribute("tabindex", "-1"); heading.focus(); }
      } else {
        box.hidden = true;
        var p = document.createElement("p");
        p.className = "form-errors";
        p.setAttribute("role", "alert");
        p.textContent = form.getAttribute("data-failed") + " (" + xhr.status + ")";
        report.appendChild(p);
      }
    });
    xhr.send(file);
  });
})();
