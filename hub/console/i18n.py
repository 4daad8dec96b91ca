"""The console's languages: Vietnamese by default, English on request.

Messages are written in English in the templates (`_("Services")`); hub/console/locale holds
a gettext catalogue (.po) per other language. The catalogues are compiled in memory with
Babel when the console first renders, so a clean clone needs no build step and no .mo file
can drift from its .po.
"""

from __future__ import annotations

import functools
import gettext
import io
from pathlib import Path

from babel.messages.mofile import write_mo
from babel.messages.pofile import read_po
from babel.support import Translations

DEFAULT_LANGUAGE = "vi"
#: Language code -> its own name, in the order the switch shows them.
LANGUAGES = {"vi": "Tiếng Việt", "en": "English"}

LOCALE_DIR = Path(__file__).parent / "locale"


def compiled(po_file: Path) -> Translations:
    """A .po catalogue as gettext translations (compiled in memory)."""
    with po_file.open("rb") as source:
        catalog = read_po(source)
    buffer = io.BytesIO()
    write_mo(buffer, catalog)
    buffer.seek(0)
    return Translations(buffer)


@functools.cache
def catalogues() -> dict[str, gettext.NullTranslations]:
    """Each language's translations; English is the templates' own text."""
    found: dict[str, gettext.NullTranslations] = {"en": gettext.NullTranslations()}
    for code in LANGUAGES:
        po_file = LOCALE_DIR / code / "LC_MESSAGES" / "messages.po"
        if po_file.is_file():
            found[code] = compiled(po_file)
    return found
