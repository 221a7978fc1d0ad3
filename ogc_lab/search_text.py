"""A Sphinx extension: the book's search shows formulas as text (``∂ℓ/∂p``), never as LaTeX (``\\partial\\ell``).

Sphinx's search page (7.x) builds each result's snippet from the text of the page's HTML, where a formula is
still the TeX that MathJax renders, and lists titles as the index stores them.  This extension writes each
formula's text beside its TeX (``data-text`` on the formula's element, from ``plain_math``), tells the search
page to read that text instead (a few lines of JavaScript), and rewrites the titles in ``searchindex.js`` the
same way.  Listed in _config.yml's ``sphinx.extra_extensions``.
"""

from __future__ import annotations

import html
import re
from collections.abc import Callable
from pathlib import Path
from typing import Any

# ---- TeX as text ---------------------------------------------------------------------------------

SYMBOLS = {
    "alpha": "α", "beta": "β", "gamma": "γ", "delta": "δ", "epsilon": "ε", "varepsilon": "ε", "zeta": "ζ",
    "eta": "η", "theta": "θ", "kappa": "κ", "lambda": "λ", "mu": "μ", "nu": "ν", "xi": "ξ", "pi": "π",
    "rho": "ρ", "sigma": "σ", "tau": "τ", "phi": "φ", "varphi": "φ", "chi": "χ", "psi": "ψ", "omega": "ω",
    "Gamma": "Γ", "Delta": "Δ", "Theta": "Θ", "Lambda": "Λ", "Pi": "Π", "Sigma": "Σ", "Phi": "Φ", "Psi": "Ψ",
    "Omega": "Ω", "partial": "∂", "ell": "ℓ", "infty": "∞", "nabla": "∇", "sum": "Σ", "prod": "Π", "int": "∫",
    "times": "×", "cdot": "·", "pm": "±", "ldots": "…", "cdots": "…", "dots": "…", "mid": "|", "vert": "|",
    "lvert": "|", "rvert": "|", "|": "‖", "lVert": "‖", "rVert": "‖", "langle": "⟨", "rangle": "⟩",
    "lfloor": "⌊", "rfloor": "⌋", "lceil": "⌈", "rceil": "⌉", "{": "{", "}": "}", "%": "%", "$": "$", "_": "_",
    "#": "#", "&": "&", "forall": "∀", "exists": "∃", "emptyset": "∅", "cup": "∪", "cap": "∩",
    # spaces, and what only sizes or places things
    ",": " ", ";": " ", ":": " ", " ": " ", "quad": " ", "qquad": " ", "\\": "; ", "!": "", "left": "",
    "right": "", "big": "", "Big": "", "bigg": "", "Bigg": "", "bigl": "", "bigr": "", "Bigl": "", "Bigr": "",
    "displaystyle": "", "textstyle": "", "scriptstyle": "", "limits": "", "nolimits": "",
}
# Relations, arrows and plus read with a space either side.
SPACED = {
    "le": "≤", "leq": "≤", "ge": "≥", "geq": "≥", "ne": "≠", "neq": "≠", "approx": "≈", "sim": "~", "equiv": "≡",
    "propto": "∝", "to": "→", "rightarrow": "→", "leftarrow": "←", "mapsto": "↦", "Rightarrow": "⇒", "iff": "⇔",
    "in": "∈", "notin": "∉", "subset": "⊂", "subseteq": "⊆", "=": "=", "<": "<", ">": ">", "+": "+",
}
# Named operators, read as their names.
OPERATORS = {"log", "ln", "exp", "min", "max", "arg", "sup", "inf", "lim", "Pr", "det", "sin", "cos", "tanh"}
ACCENTS = {"bar": "\u0304", "hat": "\u0302", "tilde": "\u0303", "dot": "\u0307", "vec": "\u20d7",
           "overline": "\u0304", "widehat": "\u0302", "widetilde": "\u0303"}
# Commands whose argument is math shown as it is (a font or a name) and whose argument is text (spaces kept).
MATH_WRAPPERS = {"mathrm", "mathbf", "mathit", "mathsf", "mathtt", "mathcal", "mathbb", "boldsymbol", "bm",
                 "operatorname", "operatorname*"}
TEXT_WRAPPERS = {"text", "textrm", "textit", "textbf", "mbox"}
SUPERSCRIPTS = dict(zip("0123456789+-=()", "⁰¹²³⁴⁵⁶⁷⁸⁹⁺⁻⁼⁽⁾", strict=True))
SUBSCRIPTS = dict(zip("0123456789+-=()", "₀₁₂₃₄₅₆₇₈₉₊₋₌₍₎", strict=True))

_TOKEN = re.compile(r"\\operatorname\*|\\[A-Za-z]+|\\.|\s+|.", re.DOTALL)


class _Tokens:
    """TeX as a stream of tokens: commands, single characters and runs of white space."""

    def __init__(self, tex: str) -> None:
        self.items = _TOKEN.findall(tex)
        self.at = 0

    def next(self) -> str | None:
        """The next token (None at the end), consumed."""
        token = self.items[self.at] if self.at < len(self.items) else None
        self.at += 1
        return token

    def peek(self) -> str | None:
        """The next token that is not white space, not consumed."""
        return next((token for token in self.items[self.at:] if not token.isspace()), None)

    def skip_space(self) -> None:
        """Consume white space (it separates tokens in math; it is never shown)."""
        while self.at < len(self.items) and self.items[self.at].isspace():
            self.at += 1


def _group(tokens: _Tokens) -> str:
    """Text up to the closing brace (or the end), the brace consumed; a minus after a term reads ' - '."""
    parts: list[str] = []
    while (token := tokens.next()) not in (None, "}"):
        after_term = re.search(r"[\w)\]|*]\s*$", "".join(parts)) is not None
        parts.append(" - " if token == "-" and after_term else _atom(token, tokens))
    return "".join(parts)


def _raw_group(tokens: _Tokens) -> str:
    """A braced argument in text mode: its characters as written, spaces kept."""
    tokens.skip_space()
    if tokens.next() != "{":
        return ""
    parts, depth = [], 1
    while (token := tokens.next()) is not None:
        depth += {"{": 1, "}": -1}.get(token, 0)
        if depth == 0:
            break
        parts.append(token if token in "{}" else SYMBOLS.get(token[1:], token[1:]) if token[0] == "\\" else token)
    return "".join(parts)


def _argument(tokens: _Tokens) -> str:
    """The next argument: a braced group or one token, as text."""
    tokens.skip_space()
    token = tokens.next()
    return "" if token is None else _atom(token, tokens).strip()


def _parenthesised(text: str) -> str:
    """``text`` in parentheses when it holds a space or an operator, as in a/b and ∂ℓ/∂p against (a + b)/c."""
    return f"({text})" if re.search(r"[\s+\-=<>/≤≥]", text) else text


def _script(tokens: _Tokens, marks: dict[str, str], sign: str) -> str:
    """A super- or subscript: Unicode's small digits where every character has one, else ^(...) or _(...),
    then a space if a letter or a symbol follows (η_t ε, not η_tε)."""
    text = _argument(tokens)
    if text and all(c in marks for c in text):
        return "".join(marks[c] for c in text)
    following = tokens.peek() or ""
    return sign + _parenthesised(text) + (" " if re.match(r"\\[A-Za-z]|[^\W_]", following) else "")


def _fraction(tokens: _Tokens) -> str:
    """\\frac{a}{b} as a/b."""
    numerator = _argument(tokens)
    return f"{_parenthesised(numerator)}/{_parenthesised(_argument(tokens))} "


def _accent(mark: str) -> Callable[[_Tokens], str]:
    """An accent command: its argument with the combining ``mark`` (x̄), or the argument alone when longer."""
    def accent(tokens: _Tokens) -> str:
        text = _argument(tokens)
        return text + mark if len(text) == 1 else text
    return accent


def _environment(tokens: _Tokens) -> str:
    """\\begin{...} or \\end{...}: nothing shown."""
    _raw_group(tokens)  # \begin{aligned} and \end{aligned} only arrange what they hold
    return ""


COMMANDS: dict[str, Callable[[_Tokens], str]] = {
    "frac": _fraction, "dfrac": _fraction, "tfrac": _fraction,
    "sqrt": lambda tokens: "√" + _parenthesised(_argument(tokens)),
    "begin": _environment, "end": _environment,
    **{name: _accent(mark) for name, mark in ACCENTS.items()},
    **{name: _argument for name in MATH_WRAPPERS},
    **{name: _raw_group for name in TEXT_WRAPPERS},
}


# The characters that are not shown as themselves: groups, scripts and alignment.
SPECIAL: dict[str, Callable[[_Tokens], str]] = {
    "{": _group,
    "^": lambda tokens: _script(tokens, SUPERSCRIPTS, "^"),
    "_": lambda tokens: _script(tokens, SUBSCRIPTS, "_"),
    "&": lambda tokens: " ",
}


def _atom(token: str, tokens: _Tokens) -> str:
    """One token (with what it takes from the stream) as text."""
    if token in SPECIAL:
        return SPECIAL[token](tokens)
    if token.isspace():
        return ""
    if not token.startswith("\\") or len(token) == 1:
        return f" {token} " if token in SPACED else token
    name = token[1:]
    if name in COMMANDS:
        return COMMANDS[name](tokens)
    if name in SPACED:
        return f" {SPACED[name]} "
    if name in OPERATORS:  # log p, but log(p) and log_2
        return name + ("" if (tokens.peek() or "(") in {"(", "^", "_", "\\left"} else " ")
    return SYMBOLS.get(name, name if name.isalpha() else "")  # \log reads 'log'; an unknown command its name


def plain_math(tex: str) -> str:
    """TeX math as the text a reader would say: Unicode symbols, a/b for fractions, x² or x_t for scripts."""
    text = " ".join(_group(_Tokens(tex)).split())
    text = re.sub(r",(?=\S)", ", ", text)  # a, b
    text = re.sub(r"\s+(?=[)\],;.])", "", text)  # (1/K) and x, not (1/K ) and x ,
    return re.sub(r"[,;](?=;)", "", text).strip("; ")  # the rows of an alignment, ended by ';' once


# ---- Sphinx --------------------------------------------------------------------------------------

# Each formula's text for the search page's snippets: read in place of the formula's TeX.
SEARCH_PAGE_JS = """
document.addEventListener("DOMContentLoaded", () => {
  if (typeof Search === "undefined") return;  // not the search page
  const pageText = Search.htmlToText;
  Search.htmlToText = (htmlString, anchor) => {
    const page = new DOMParser().parseFromString(htmlString, "text/html");
    page.querySelectorAll(".math[data-text]").forEach((formula) => formula.replaceWith(formula.dataset.text));
    return pageText(page.documentElement.outerHTML, anchor);
  };
});
"""
_TITLE_FORMULA = re.compile(r'<(span|div)\b[^>]*\bdata-text="([^"]*)"[^>]*>.*?</\1>', re.DOTALL)


def _with_text(visit: Callable[[Any, Any], None]) -> Callable[[Any, Any], None]:
    """A math renderer's visitor that also writes the formula's text as the element's ``data-text``."""
    def visit_with_text(translator: Any, node: Any) -> None:
        start = len(translator.body)
        try:
            visit(translator, node)
        finally:
            if len(translator.body) > start:
                text = html.escape(plain_math(node.astext()), quote=True)
                tag = translator.body[start]
                translator.body[start] = re.sub(r"^<(\w+)", lambda m: f'<{m.group(1)} data-text="{text}"', tag, count=1)
    return visit_with_text


def _wrap_math_renderer(app: Any) -> None:
    """Give the HTML builder's math renderer (MathJax here) the ``data-text`` of each formula."""
    name = getattr(app.builder, "math_renderer_name", None)
    if name is None:
        return
    for renderers in (app.registry.html_inline_math_renderers, app.registry.html_block_math_renderers):
        visit, depart = renderers[name]
        renderers[name] = (_with_text(visit), depart)


def _plain_title(title: Any) -> str:
    """A title's text with each formula as text."""
    from docutils import nodes

    return "".join(plain_math(part.astext()) if isinstance(part, nodes.math) else part.astext()
                   for part in title.findall(lambda n: isinstance(n, (nodes.math, nodes.Text)))
                   if not isinstance(part.parent, nodes.math))


def _collect_titles(app: Any, doctree: Any) -> None:
    """Remember, per document, the text of every title that holds a formula (as the index stores it)."""
    from docutils import nodes

    _titles_of(app.env)[app.env.docname] = {
        title.astext(): _plain_title(title) for title in doctree.findall(nodes.title)
        if any(True for _ in title.findall(nodes.math))
    }


def _titles_of(env: Any) -> dict[str, dict[str, str]]:
    """Per document, its titles that hold a formula: the text the index stores -> the text to show instead
    (kept on the build environment, so an incremental build still knows the documents it did not read)."""
    if not hasattr(env, "ogc_plain_titles"):
        env.ogc_plain_titles = {}
    return env.ogc_plain_titles


def _purge_titles(app: Any, env: Any, docname: str) -> None:
    """Forget a document's titles when Sphinx reads it again or drops it."""
    _titles_of(env).pop(docname, None)


def _merge_titles(app: Any, env: Any, docnames: set[str], other: Any) -> None:
    """Take the titles a parallel reader collected."""
    _titles_of(env).update({d: t for d, t in _titles_of(other).items() if d in docnames})


def plain_titles(index: dict[str, Any], titles: dict[str, str]) -> dict[str, Any]:
    """The search index with its titles' formulas as text: page titles (HTML, with ``data-text``) and section
    titles (keyed by their TeX-bearing text, rewritten through ``titles``)."""
    return {**index,
            "titles": [title and _TITLE_FORMULA.sub(lambda m: m.group(2), title) for title in index["titles"]],
            "alltitles": {titles.get(title, title): places for title, places in index["alltitles"].items()}}


def _rewrite_index(app: Any, exception: Exception | None) -> None:
    """After an HTML build, rewrite searchindex.js with its titles' formulas as text."""
    from sphinx.search import js_index

    path = Path(app.outdir) / "searchindex.js"
    if exception is not None or not path.exists():
        return
    titles = {raw: plain for doc in _titles_of(app.env).values() for raw, plain in doc.items()}
    path.write_text(js_index.dumps(plain_titles(js_index.loads(path.read_text()), titles)))


def setup(app: Any) -> dict[str, Any]:
    """Register the extension with Sphinx."""
    app.add_js_file(None, body=SEARCH_PAGE_JS)
    app.connect("builder-inited", _wrap_math_renderer)
    app.connect("doctree-read", _collect_titles)
    app.connect("env-purge-doc", _purge_titles)
    app.connect("env-merge-info", _merge_titles)
    app.connect("build-finished", _rewrite_index)
    return {"version": "1", "env_version": 1, "parallel_read_safe": True, "parallel_write_safe": True}
