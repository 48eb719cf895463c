// Filters apply as soon as a choice changes; dates apply when the field loses focus.
document.querySelectorAll('form.filters select').forEach(function (el) {
  el.addEventListener('change', function () { el.form.requestSubmit(); });
});
