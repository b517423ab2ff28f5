// What a reader of a page of the built book must be able to see, measured in the browser.
// Evaluated by tests/test_browser.py on each page after it settled; returns a JSON object
// of problems (empty lists: none) and what the landing page's claims table shows.
(() => {
  const tolerance = 1;  // CSS px: sub-pixel rounding of borders
  const minimumScale = 0.75;  // smallest share of its own width a figure may be shown at
  const viewport = document.documentElement.clientWidth;
  const describe = (el) => {
    const text = (el.innerText || el.getAttribute('alt') || el.getAttribute('src') || '').trim();
    return `${el.tagName.toLowerCase()}${el.id ? '#' + el.id : ''}${el.className && typeof el.className === 'string' ? '.' + el.className.trim().split(/\s+/).join('.') : ''} "${text.slice(0, 60)}"`;
  };
  const clippers = (el) => {  // ancestors that clip or scroll their content horizontally
    const found = [];
    for (let node = el.parentElement; node && node !== document.documentElement; node = node.parentElement) {
      const overflow = getComputedStyle(node).overflowX;
      if (overflow !== 'visible') found.push(node);
    }
    return found;
  };
  const column = document.querySelector('article.bd-article') || document.querySelector('main') || document.body;
  const columnBox = column.getBoundingClientRect();
  const style = getComputedStyle(column);
  const contentLeft = columnBox.left + parseFloat(style.paddingLeft);
  const contentRight = columnBox.right - parseFloat(style.paddingRight);

  // 1. Every claims-row verdict cell, scrolled to: wholly inside the viewport and inside every clipping ancestor.
  const verdictProblems = [];
  const verdicts = [];
  const viewportHeight = document.documentElement.clientHeight;
  for (const cell of document.querySelectorAll('table.claims-table tr.claim-row td.claim-verdict')) {
    // Scroll the page down to the cell, as a reader does; never sideways (that would hide the fault).
    const before = cell.getBoundingClientRect();
    window.scrollTo({left: 0, top: window.scrollY + before.top + before.height / 2 - viewportHeight / 2, behavior: 'instant'});
    const box = cell.getBoundingClientRect();
    const row = cell.closest('tr');
    verdicts.push({id: row.dataset.claimId, verdict: cell.innerText.trim(), width: box.width});
    if (box.width < 1 || box.height < 1) { verdictProblems.push(`${row.dataset.claimId}: verdict cell has no size`); continue; }
    if (box.left < -tolerance || box.right > viewport + tolerance || box.top < -tolerance || box.bottom > viewportHeight + tolerance) {
      verdictProblems.push(`${row.dataset.claimId}: verdict cell spans x ${box.left.toFixed(0)}-${box.right.toFixed(0)}, y ${box.top.toFixed(0)}-${box.bottom.toFixed(0)}; viewport ${viewport} x ${viewportHeight}`);
    }
    for (const clip of clippers(cell)) {
      const c = clip.getBoundingClientRect();
      if (box.left < c.left - tolerance || box.right > c.right + tolerance || clip.scrollWidth > clip.clientWidth + tolerance) {
        verdictProblems.push(`${row.dataset.claimId}: verdict cell clipped by scrolling ${describe(clip)} (its content ${clip.scrollWidth} px in ${clip.clientWidth} px)`);
      }
    }
  }

  window.scrollTo(0, 0);

  // 2. No table or figure wider than the content column.
  const wide = [];
  for (const el of column.querySelectorAll('table, figure, img, div.cell_output img, svg.figure')) {
    if (el.closest('.bd-sidebar-primary, .bd-sidebar-secondary, header, footer, mjx-container')) continue;
    const box = el.getBoundingClientRect();
    const width = Math.max(box.width, el.scrollWidth || 0);
    if (box.width === 0) continue;  // hidden (e.g. a folded cell)
    if (width > contentRight - contentLeft + tolerance || box.left < contentLeft - tolerance || box.left + width > contentRight + tolerance) {
      wide.push(`${describe(el)}: ${width.toFixed(0)} px at x ${box.left.toFixed(0)}, column ${contentLeft.toFixed(0)}-${contentRight.toFixed(0)}`);
    }
  }

  // 2b. No figure shrunk by more than a quarter to fit the column: its text would drop below
  // readable size (plots.common.MAX_WIDTH keeps every figure within this).
  const shrunk = [];
  for (const img of column.querySelectorAll('figure img, div.cell_output img')) {
    const shown = img.getBoundingClientRect().width;
    if (shown === 0 || img.naturalWidth === 0) continue;
    if (shown < minimumScale * img.naturalWidth - tolerance) {
      shrunk.push(`${describe(img)}: shown ${shown.toFixed(0)} px of its ${img.naturalWidth} px (${(shown / img.naturalWidth).toFixed(2)})`);
    }
  }

  // 3. No raw TeX or unresolved glue text a reader would see.
  const text = document.body.innerText;
  const raw = [];
  for (const marker of ['\\(', '\\)', '\\[', '{glue:', '{glue}']) {
    const at = text.indexOf(marker);
    if (at >= 0) raw.push(`"${marker}" in "...${text.slice(Math.max(0, at - 40), at + 40).replace(/\s+/g, ' ')}..."`);
  }

  // 4. Every image loaded.
  const broken = [...document.images].filter(img => !img.complete || img.naturalWidth === 0).map(img => img.getAttribute('src'));

  return {verdictProblems, verdicts, wide, shrunk, raw, broken, mathjax: !!(window.MathJax && MathJax.startup),
          typeset: document.querySelectorAll('mjx-container').length, title: document.title};
})()
