"""ogc_lab.search_text: formulas as text for the book's search, checked on TeX and on a one-page Sphinx build."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from ogc_lab.search_text import plain_math, plain_titles


@pytest.mark.parametrize("tex, text", [
    (r"|\partial\ell/\partial p|", "|∂ℓ/∂p|"),
    (r"\bar\ell(p;\tau)", "ℓ̄(p;τ)"),
    (r"1 + \eta_t \epsilon", "1 + η_t ε"),
    (r"H = -\log p", "H = -log p"),
    (r"p^{q-1} = p^{-0.3}", "p^(q - 1) = p^(-0.3)"),
    (r"10^{-3} \le x^2", "10⁻³ ≤ x²"),
    (r"\frac{1}{p}", "1/p"),
    (r"\frac{a+b}{c}", "(a + b)/c"),
    (r"\mathrm{E}|g|_{\mathrm{noisy}}\,/\,\mathrm{E}|g|_{\mathrm{clean}}", "E|g|_noisy / E|g|_clean"),
    (r"\sum_{k=1}^{K} \bar\ell_{\mathrm{CE}}(p_k;\tau) \in [C_L, C_U]", "Σ_(k = 1)^K ℓ̄_CE(p_k;τ) ∈ [C_L, C_U]"),
    (r"R(f^*_\eta) - R(f^*)", "R(f^*_η) - R(f^*)"),
    (r"x \text{ if } x > 0", "x if x > 0"),
    (r"\begin{aligned} a &= b \\ c &= d \end{aligned}", "a = b; c = d"),
    (r"\operatorname*{arg\,max}_\tau \log\left(p\right)", "arg max_τ log(p)"),
    (r"[p_{\min}, p_{\max}]", "[p_min, p_max]"),
    (r"\widehat{\theta} \to \infty", "θ̂ → ∞"),
])
def test_plain_math_reads_tex_as_text(tex: str, text: str) -> None:
    assert plain_math(tex) == text


def test_plain_math_shows_no_command_and_no_grouping_brace() -> None:
    assert plain_math(r"\frac{\partial \bar\ell}{\partial p}\,\unknown{x}_{\mathcal{D}} \% \#") == "∂ℓ̄/∂p unknownx_D%#"


def test_plain_titles_rewrite_page_and_section_titles_and_nothing_else() -> None:
    index = {
        "titles": ['Clipping <span data-text="ℓ̄" class="math notranslate nohighlight">\\(\\bar\\ell\\)</span>',
                   'On <span class="math" data-text="τ">\\(\\tau\\)</span>', None],
        "alltitles": {"On \\bar\\ell": [[0, "on"]], "Cost": [[1, None]]},
        "terms": {"bar": 0},
    }
    plain = plain_titles(index, {"On \\bar\\ell": "On ℓ̄"})
    assert plain["titles"] == ["Clipping ℓ̄", "On τ", None]
    assert plain["alltitles"] == {"On ℓ̄": [[0, "on"]], "Cost": [[1, None]]}
    assert plain["terms"] == index["terms"]


PAGE = r"""# Clipping is training on $\bar\ell$

The slope $|\partial\ell/\partial p|$ grows as $p \to 0$.

## The ratio $r(\tau)$

$$
r(\tau) \le 1 + \eta_t \epsilon
$$
"""


@pytest.fixture(scope="module")
def built(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A one-page MyST project built to HTML with the extension, as jupyter-book configures Sphinx."""
    from sphinx.application import Sphinx

    root = tmp_path_factory.mktemp("search_book")
    (root / "conf.py").write_text(
        "extensions = ['myst_parser', 'ogc_lab.search_text']\n"
        "myst_enable_extensions = ['dollarmath', 'amsmath']\n"
        "html_theme = 'basic'\n")
    (root / "index.md").write_text(PAGE)
    out = root / "_build"
    app = Sphinx(str(root), str(root), str(out), str(root / "_doctrees"), "html", status=None, warning=None,
                 freshenv=True, warningiserror=True)
    app.build()
    return out


def test_the_built_page_carries_each_formulas_text_and_the_search_script(built: Path) -> None:
    page = (built / "index.html").read_text()
    assert 'data-text="|∂ℓ/∂p|" class="math notranslate nohighlight">\\(|\\partial\\ell/\\partial p|\\)' in page
    assert 'data-text="r(τ) ≤ 1 + η_t ε"' in page  # the display formula too
    assert "Search.htmlToText = " in page and ".math[data-text]" in page


def test_the_search_index_titles_show_formulas_as_text(built: Path) -> None:
    text = (built / "searchindex.js").read_text()
    index = json.loads(text[len("Search.setIndex("):-1])
    assert index["titles"] == ["Clipping is training on ℓ̄"]
    assert set(index["alltitles"]) == {"Clipping is training on ℓ̄", "The ratio r(τ)"}
    assert "\\" not in json.dumps(index["titles"], ensure_ascii=False) + "".join(index["alltitles"])
