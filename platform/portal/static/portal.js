// Megalis portal: progressive enhancement only; every page works without this script.
// Moves focus to the first error message so screen-reader and keyboard users hear it at once.
document.addEventListener("DOMContentLoaded", function () {
  var alert = document.querySelector("[role=alert]");
  if (alert) {
    alert.setAttribute("tabindex", "-1");
    alert.focus();
  }
});
