// The book's own script: every figure's image becomes a link to the image at full size, and a figure of
// several panels side by side (wider than twice its height) is marked "wide" for _static/book.css.
document.addEventListener("DOMContentLoaded", () => {
  for (const img of document.querySelectorAll("article figure img, article div.cell_output img")) {
    if (img.closest("a")) continue;
    const link = document.createElement("a");
    link.className = "figure-zoom";
    link.href = img.currentSrc || img.src;
    link.target = "_blank";
    link.title = "Open the figure full size";
    img.replaceWith(link);
    link.appendChild(img);
    const mark = () => link.classList.toggle("wide", img.naturalWidth > 2 * img.naturalHeight);
    if (img.complete) mark(); else img.addEventListener("load", mark);
  }
});
