"""The public side in Dutch, and the health of the Dutch catalogue.

Page tests assert literal Dutch text on purpose: they fail if a string loses its translation.
The catalogue tests parse the .po file with a small pure-Python reader (no gettext tools, no
polib), so they run on any machine, and check that the committed .mo matches the .po.
"""

from __future__ import annotations

import gettext
import html
import re
from pathlib import Path

import pytest
from django.conf import settings
from django.test import Client

PO_PATH = Path(settings.BASE_DIR) / "locale" / "nl" / "LC_MESSAGES" / "django.po"
MO_PATH = PO_PATH.with_suffix(".mo")

REPORT_URL = "/report/"


def page_text(response) -> str:
    """The page as a reader sees it: entities such as &#x27; turned back into characters."""
    return html.unescape(response.content.decode("utf-8"))


def report_data(urls: str, **overrides: str) -> dict[str, str]:
    data = {
        "urls": urls,
        "category": "csam",
        "ai_suspected": "unknown",
        "where_found": "website",
        "description": "",
        "email": "",
        "website": "",
    }
    data.update(overrides)
    return data


# --- (a) the form in each language -------------------------------------------------------------


def test_report_form_in_dutch(client: Client) -> None:
    response = client.get(REPORT_URL, HTTP_ACCEPT_LANGUAGE="nl")

    assert response.status_code == 200
    text = page_text(response)
    assert '<html lang="nl">' in text
    assert "<h1>Doe een melding</h1>" in text
    assert "Stuur nooit foto's of video's, ook niet als bewijs" in text
    assert "Je hoeft niet te zeggen wie je bent." in text
    # Field labels and choices come from forms.py and models/choices.py.
    assert "Webadressen (URL's)" in text
    assert "Wat is er te zien?" in text
    for label in (
        "Beelden van seksueel misbruik van een kind",
        "Zulke beelden, maar door AI gemaakt, getekend of bewerkt",
        "Een kind dat met beelden wordt gedwongen of afgeperst",
        "Iets anders",
        "Weet ik niet",
        "Een chat- of berichtenapp",
    ):
        assert label in text
    assert "Melding versturen" in text
    assert "Status opvragen" in text
    # No English left in the parts a frightened reader relies on.
    assert "Make a report" not in text
    assert "Never send images or videos" not in text
    assert "Sexual abuse imagery of a child" not in text


def test_report_form_in_english(client: Client) -> None:
    response = client.get(REPORT_URL, HTTP_ACCEPT_LANGUAGE="en")

    assert response.status_code == 200
    text = page_text(response)
    assert '<html lang="en">' in text
    assert "<h1>Make a report</h1>" in text
    assert "Never send images or videos, not even as evidence" in text
    assert "Sexual abuse imagery of a child" in text
    assert "Doe een melding" not in text
    assert "Beelden van seksueel misbruik van een kind" not in text


def test_language_switch_marks_the_current_language(client: Client) -> None:
    text = page_text(client.get(REPORT_URL, HTTP_ACCEPT_LANGUAGE="nl"))

    assert '<label for="language-select">Taal</label>' in text
    assert '<option value="nl" lang="nl" selected>Nederlands</option>' in text
    assert '<button type="submit">Wijzigen</button>' in text


def test_language_names_are_shown_in_their_own_language(client: Client) -> None:
    english_page = page_text(client.get(REPORT_URL, HTTP_ACCEPT_LANGUAGE="en"))
    dutch_page = page_text(client.get(REPORT_URL, HTTP_ACCEPT_LANGUAGE="nl"))

    # Someone who reads only Dutch must find "Nederlands" on the English page, and the reverse.
    assert '<option value="nl" lang="nl">Nederlands</option>' in english_page
    assert '<option value="en" lang="en">English</option>' in dutch_page


def test_url_help_text_in_dutch(client: Client) -> None:
    text = page_text(client.get(REPORT_URL, HTTP_ACCEPT_LANGUAGE="nl"))
    assert "Eén adres per regel" in text


# --- (b) the language switch -------------------------------------------------------------------


def test_language_switch_overrides_accept_language(client: Client) -> None:
    response = client.post("/i18n/setlang/", {"language": "nl", "next": REPORT_URL}, HTTP_ACCEPT_LANGUAGE="en")
    assert response.status_code == 302
    assert response["Location"] == REPORT_URL

    response = client.get(REPORT_URL, HTTP_ACCEPT_LANGUAGE="en")

    text = page_text(response)
    assert '<html lang="nl">' in text
    assert "<h1>Doe een melding</h1>" in text
    assert "Make a report" not in text


def test_language_switch_back_to_english(client: Client) -> None:
    client.post("/i18n/setlang/", {"language": "nl", "next": REPORT_URL})
    client.post("/i18n/setlang/", {"language": "en", "next": REPORT_URL})

    text = page_text(client.get(REPORT_URL, HTTP_ACCEPT_LANGUAGE="nl"))

    assert '<html lang="en">' in text
    assert "<h1>Make a report</h1>" in text


# --- (c) validation errors ---------------------------------------------------------------------


def test_validation_error_in_dutch_with_line_number(client: Client) -> None:
    urls = "https://example.com/page\nftp://files.example/archive"

    response = client.post(REPORT_URL, report_data(urls), HTTP_ACCEPT_LANGUAGE="nl")

    assert response.status_code == 400
    text = page_text(response)
    assert "Verbeter het volgende" in text
    assert (
        "Regel 2 (ftp://files.example/archive): je kunt alleen webadressen melden die beginnen met http:// of https://."
    ) in text
    assert "Line 2" not in text
    assert "can be reported" not in text
    # What the reporter typed stays on the page.
    assert "https://example.com/page" in text


def test_validation_error_with_a_limit_in_dutch(client: Client) -> None:
    too_long = "https://example.com/" + "a" * settings.HOTLINE_MAX_URL_LENGTH

    response = client.post(REPORT_URL, report_data(too_long), HTTP_ACCEPT_LANGUAGE="nl")

    assert response.status_code == 400
    text = page_text(response)
    assert f"het adres is te lang (maximaal {settings.HOTLINE_MAX_URL_LENGTH} tekens)." in text
    assert "Regel 1 (" in text


def test_validation_error_in_english(client: Client) -> None:
    response = client.post(REPORT_URL, report_data("ftp://files.example/archive"), HTTP_ACCEPT_LANGUAGE="en")

    assert response.status_code == 400
    text = page_text(response)
    assert "Line 1 (ftp://files.example/archive): only web addresses starting with http:// or https://" in text


# --- (d) the receipt ---------------------------------------------------------------------------


@pytest.mark.django_db
def test_receipt_in_dutch(client: Client) -> None:
    urls = "https://example.com/one\nhttps://example.com/one\nhttps://www.example/two"

    response = client.post(REPORT_URL, report_data(urls, category="ai_csam"), HTTP_ACCEPT_LANGUAGE="nl")

    assert response.status_code == 200
    text = page_text(response)
    assert '<html lang="nl">' in text
    assert "<h1>Bedankt voor je melding</h1>" in text
    assert "We hebben 2 webadressen ontvangen." in text
    assert "1 regel bevatte hetzelfde adres als een andere regel." in text
    assert "Een analist gaat je melding beoordelen." in text
    assert "Schrijf deze zaakcode en pincode op." in text
    assert "<dt>Zaakcode</dt>" in text
    assert "<dt>Pincode</dt>" in text
    assert re.search(r'data-receipt="code">[^<\s]+<', text)
    assert re.search(r'data-receipt="pin">[^<\s]+<', text)
    assert "Thank you" not in text
    assert "We received" not in text


@pytest.mark.django_db
def test_receipt_in_dutch_singular(client: Client) -> None:
    response = client.post(REPORT_URL, report_data("https://example.com/only"), HTTP_ACCEPT_LANGUAGE="nl")

    assert response.status_code == 200
    text = page_text(response)
    assert "We hebben 1 webadres ontvangen." in text
    assert "samengevoegd" not in text


# --- (e) the catalogue -------------------------------------------------------------------------

_ESCAPES = {"n": "\n", "t": "\t", "r": "\r", '"': '"', "\\": "\\", "a": "\a", "b": "\b", "f": "\f", "v": "\v"}


def _unquote(token: str) -> str:
    if len(token) < 2 or not (token.startswith('"') and token.endswith('"')):
        raise ValueError(f"not a quoted PO string: {token!r}")
    return re.sub(r"\\(.)", lambda m: _ESCAPES.get(m.group(1), "\\" + m.group(1)), token[1:-1])


def parse_po(path: Path) -> list[dict]:
    """Read a .po file into entries: msgctxt, msgid, msgid_plural, msgstr or msgstr[n], flags.

    Obsolete entries (#~) are skipped. Enough for files written by makemessages/msgmerge.
    """
    entries: list[dict] = []
    entry: dict = {"flags": set()}
    key: str | None = None

    def flush() -> None:
        nonlocal entry, key
        if "msgid" in entry:
            entries.append(entry)
        entry, key = {"flags": set()}, None

    for raw in path.read_text(encoding="utf-8").splitlines():
        line = raw.strip()
        if not line:
            flush()
        elif line.startswith("#~"):
            continue
        elif line.startswith("#"):
            if any(k.startswith("msgstr") for k in entry):
                flush()
            if line.startswith("#,"):
                entry["flags"].update(flag.strip() for flag in line[2:].split(","))
        elif line.startswith('"'):
            assert key is not None, f"continuation line without a keyword: {raw!r}"
            entry[key] += _unquote(line)
        else:
            keyword, _, rest = line.partition(" ")
            if keyword in ("msgctxt", "msgid") and any(k.startswith("msgstr") for k in entry):
                flush()
            key = keyword
            entry[key] = _unquote(rest.strip())
    flush()
    return entries


def _plural_forms(entry: dict) -> list[str]:
    forms = sorted((k for k in entry if k.startswith("msgstr[")), key=lambda k: int(k[7:-1]))
    return [entry[k] for k in forms]


def _catalog_key(entry: dict) -> str:
    return f"{entry['msgctxt']}\x04{entry['msgid']}" if "msgctxt" in entry else entry["msgid"]


@pytest.fixture(scope="module")
def po_entries() -> list[dict]:
    assert PO_PATH.exists(), f"{PO_PATH} is missing; run makemessages -l nl"
    return parse_po(PO_PATH)


def test_po_header_is_dutch_with_two_plural_forms(po_entries: list[dict]) -> None:
    header = next(e for e in po_entries if e["msgid"] == "" and "msgctxt" not in e)
    assert "fuzzy" not in header["flags"]
    assert "Language: nl\n" in header["msgstr"]
    assert "Plural-Forms: nplurals=2; plural=(n != 1);" in header["msgstr"]
    assert "charset=UTF-8" in header["msgstr"]


def test_po_is_fully_translated(po_entries: list[dict]) -> None:
    messages = [e for e in po_entries if e["msgid"] != ""]
    assert messages, "the catalogue has no messages"
    fuzzy = [e["msgid"] for e in messages if "fuzzy" in e["flags"]]
    untranslated = [
        e["msgid"]
        for e in messages
        if ("msgid_plural" in e and (len(_plural_forms(e)) != 2 or not all(_plural_forms(e))))
        or ("msgid_plural" not in e and not e.get("msgstr"))
    ]
    assert fuzzy == [], f"fuzzy entries: {fuzzy}"
    assert untranslated == [], f"untranslated entries: {untranslated}"


_PLACEHOLDER_RE = re.compile(r"%\((\w+)\)[sd]|%[sd]")


def test_po_keeps_every_placeholder(po_entries: list[dict]) -> None:
    wrong = []
    for entry in po_entries:
        if entry["msgid"] == "" or "python-format" not in entry["flags"]:
            continue
        expected = sorted(_PLACEHOLDER_RE.findall(entry["msgid"]))
        translations = _plural_forms(entry) if "msgid_plural" in entry else [entry["msgstr"]]
        wrong += [(entry["msgid"], t) for t in translations if sorted(_PLACEHOLDER_RE.findall(t)) != expected]
    assert wrong == []


def test_mo_is_up_to_date_with_po(po_entries: list[dict]) -> None:
    assert MO_PATH.exists(), f"{MO_PATH} is missing; run compilemessages -l nl"
    with MO_PATH.open("rb") as handle:
        compiled = gettext.GNUTranslations(handle)

    expected: dict[object, str] = {}
    for entry in po_entries:
        if "fuzzy" in entry["flags"] and entry["msgid"] != "":
            continue  # msgfmt leaves fuzzy entries out
        key = _catalog_key(entry)
        if "msgid_plural" in entry:
            for index, text in enumerate(_plural_forms(entry)):
                if text:
                    expected[(key, index)] = text
        elif entry["msgstr"]:
            expected[key] = entry["msgstr"]

    # gettext >= 0.22 drops POT-Creation-Date from the compiled header (reproducible builds), and
    # the date changes on every makemessages run without any translation changing.
    actual = dict(compiled._catalog)  # the only way to list a compiled catalogue
    for catalog in (actual, expected):
        catalog[""] = re.sub(r"^POT-Creation-Date: .*\n", "", catalog.get("", ""), flags=re.MULTILINE)
    assert actual == expected, "locale/nl/LC_MESSAGES/django.mo is stale: run compilemessages -l nl"
    assert compiled.ngettext("We received %(counter)s web address.", "", 3) == (
        "We hebben %(counter)s webadressen ontvangen."
    )
