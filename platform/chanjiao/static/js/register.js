/* Registration form: show only the field that matches the chosen organisation kind (industry
   for an enterprise, category for an institution). Progressive enhancement: without script
   both fields stay visible and the server checks which one is required. */
(function () {
  "use strict";
  var industry = document.getElementById("industry");
  var category = document.getElementById("category");
  var radios = document.querySelectorAll('input[name="kind"]');
  if (!industry || !category || !radios.length) { return; }
  function sync() {
    var checked = document.querySelector('input[name="kind"]:checked');
    var kind = checked ? checked.value : "";
    industry.closest(".field").hidden = kind === "institution";
    category.closest(".field").hidden = kind === "enterprise";
  }
  radios.forEach(function (radio) { radio.addEventListener("change", sync); });
  sync();
})();
