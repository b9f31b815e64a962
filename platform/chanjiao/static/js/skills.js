/* Skill-tag autocomplete: fills the <datalist> of an input marked data-skill-suggest with
   names from /skills/suggest for the tag being typed (the text after the last separator),
   and asks before a form marked data-confirm is sent. Local, no dependencies; the page works
   without it. */
(function () {
  "use strict";
  var SEPARATORS = /[,，、;；\n]/;

  function lastToken(value) {
    var parts = value.split(SEPARATORS);
    return parts[parts.length - 1].trim();
  }

  function prefixOf(value) {
    var match = value.match(/^(.*[,，、;；\n]\s*)/);
    return match ? match[1] : "";
  }

  document.querySelectorAll("input[data-skill-suggest]").forEach(function (input) {
    var list = document.getElementById(input.getAttribute("list"));
    if (!list) { return; }
    var single = input.hasAttribute("data-single");
    var timer = null;
    var lastQuery = null;
    input.addEventListener("input", function () {
      clearTimeout(timer);
      timer = setTimeout(function () {
        var query = single ? input.value.trim() : lastToken(input.value);
        if (!query || query === lastQuery) { return; }
        lastQuery = query;
        var url = input.getAttribute("data-skill-suggest") + "?q=" + encodeURIComponent(query);
        fetch(url, { headers: { "Accept": "application/json" } })
          .then(function (response) { return response.ok ? response.json() : []; })
          .then(function (names) {
            var prefix = single ? "" : prefixOf(input.value);
            list.textContent = "";
            names.forEach(function (name) {
              var option = document.createElement("option");
              option.value = prefix + name;
              option.label = name;
              list.appendChild(option);
            });
          })
          .catch(function () { /* autocomplete is a convenience only */ });
      }, 200);
    });
  });

  document.querySelectorAll("form[data-confirm]").forEach(function (form) {
    form.addEventListener("submit", function (event) {
      if (!window.confirm(form.getAttribute("data-confirm"))) { event.preventDefault(); }
    });
  });
})();
