"""Every page, once: its section, its file, its address and its place in the sidebar's menu.

app.py builds the navigation from this table, the lesson path links its pages through it and the tests
find a page's file by its address. The files sit in one folder per section of the menu; the addresses are
the ones the pages had before they were grouped (`/probe_occlusion`, `/exp_heads`), so shared links and
bookmarks made before still open the same page.
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class PageEntry:
    section: str  # the menu's heading
    script: str  # the page's file, relative to app.py
    url_path: str  # its address; the default page answers at "" as well
    label: str  # its line in the menu
    icon: str


def _section(section: str, folder: str, rows: list[tuple[str, str, str, str]]) -> list[PageEntry]:
    return [PageEntry(section, f"pages/{folder}/{stem}.py", url, label, icon) for stem, url, label, icon in rows]


PAGES: list[PageEntry] = [
    *_section("From sound to text", "sound_to_text", [
        ("overview", "overview", "Overview", ":material/home:"),
        ("audio", "audio", "Audio and spectrogram", ":material/graphic_eq:"),
        ("encoder", "encoder", "Encoder", ":material/layers:"),
        ("tokens", "tokens", "Tokens", ":material/format_list_numbered:"),
        ("alignment", "alignment", "Alignment", ":material/align_horizontal_left:"),
        ("search", "search", "Search tree", ":material/account_tree:"),
        ("tokenizer", "tokenizer", "Tokenizer", ":material/content_cut:"),
        ("architecture", "architecture", "Architecture", ":material/schema:"),
    ]),
    *_section("Go further", "go_further", [
        ("lens", "lens", "Logit lens", ":material/visibility:"),
        ("compare", "compare", "Compare", ":material/compare:"),
        ("live", "live", "Live: streaming", ":material/mic:"),
        ("export", "export", "Export and share", ":material/download:"),
        ("glossary", "glossary", "Glossary", ":material/menu_book:"),
    ]),
    *_section("Many clips", "many_clips", [
        ("corpus", "corpus", "Corpus: many clips compared", ":material/table_chart:"),
    ]),
    *_section("Experiments", "experiments", [
        ("occlusion", "probe_occlusion", "Occlusion: which sound made which word", ":material/blur_on:"),
        ("surgery", "probe_surgery", "Encoder-span surgery", ":material/content_cut:"),
        ("neurons", "probe_neurons", "Listen to a neuron", ":material/neurology:"),
        ("hallucination", "exp_hallucination", "Hallucination check", ":material/report:"),
        ("head_lab", "exp_heads", "Head lab", ":material/science:"),
        ("attention_window", "exp_mask", "Encoder attention window", ":material/width:"),
        ("head_finder", "exp_finder", "Alignment-head finder", ":material/manage_search:"),
        ("encoder_lens", "exp_encoder_lens", "Encoder lens", ":material/stacks:"),
        ("language", "exp_language", "Language per window", ":material/translate:"),
    ]),
]
DEFAULT_PAGE = "overview"  # the page a bare address opens


def script_of(url_path: str) -> str:
    """The file of the page at this address ("" is the default page)."""
    url_path = url_path or DEFAULT_PAGE
    for page in PAGES:
        if page.url_path == url_path:
            return page.script
    raise KeyError(f"no page at /{url_path}")
