#!/usr/bin/env bash
# Refresh the translation catalogue after adding, changing or removing UI strings.
#
#   scripts/update_translations.sh
#
# 1. extracts every marked string (Python: _, gettext, ngettext, _l, lazy_gettext, ...;
#    templates: {{ _("...") }}) as babel.cfg maps them, into
#    platform/chanjiao/translations/messages.pot;
# 2. merges that template into platform/chanjiao/translations/en/LC_MESSAGES/messages.po
#    (creating it the first time);
# 3. compiles the .mo files (git-ignored) and prints how much is translated.
#
# Then translate every new (empty) or "#, fuzzy" entry of en/LC_MESSAGES/messages.po, delete the
# fuzzy flag, keep %(name)s placeholders as they are, rerun this script, and commit
# messages.pot and messages.po. tests/test_i18n.py fails while any message is untranslated.
#
# Chinese needs no catalogue: the message ids are the Chinese text.
# Needs only Babel (pybabel); PYBABEL=/path/to/pybabel overrides the venv's.
set -euo pipefail

cd "$(dirname "${BASH_SOURCE[0]}")/.."

PYBABEL="${PYBABEL:-.venv/bin/pybabel}"
TRANSLATIONS=platform/chanjiao/translations
POT="$TRANSLATIONS/messages.pot"
LOCALES=(en)

# Besides Babel's defaults (_, gettext, ngettext, pgettext, npgettext, N_, ...), the lazy forms
# used by forms and choices.py. tests/test_i18n.py reads these -k flags from this file.
"$PYBABEL" extract -F babel.cfg \
    -k _l -k lazy_gettext -k lazy_ngettext:1,2 -k lazy_pgettext:1c,2 \
    --project=Chanjiao --version=0.1.0 \
    --copyright-holder="Chaoyang District Vocational Training Development Promotion Association" \
    --no-wrap \
    -o "$POT" .

for locale in "${LOCALES[@]}"; do
    if [[ -f "$TRANSLATIONS/$locale/LC_MESSAGES/messages.po" ]]; then
        "$PYBABEL" update -i "$POT" -d "$TRANSLATIONS" -l "$locale" --no-wrap --ignore-obsolete
    else
        "$PYBABEL" init -i "$POT" -d "$TRANSLATIONS" -l "$locale" --no-wrap
    fi
done

"$PYBABEL" compile -d "$TRANSLATIONS" --statistics
